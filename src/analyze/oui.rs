//! MAC vendor names from the IEEE registries (MA-L, MA-M, MA-S, IAB, CID), embedded at
//! build time by the `oui-data` crate: no file or network access at run time.
//!
//! The longest assignment wins (a 36-bit MA-S block inside a 24-bit MA-L block registered
//! to the IEEE itself names the real holder), as the registries intend.

use crate::dissect::Mac;

/// The organization holding the IEEE assignment that contains `mac`, if any.
pub fn vendor(mac: Mac) -> Option<String> {
    let m = mac.0;
    // Upper-case hex without separators is the crate's fast path (no re-formatting).
    let key = format!(
        "{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    );
    let rec = oui_data::lookup(&key)?;
    // The crate turns runs of spaces in the registry into line breaks; names are one line.
    let name = rec
        .organization()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_assignments() {
        // 00:00:0c is Cisco's first MA-L block; 08:00:27 is Oracle VirtualBox's.
        let cisco = vendor(Mac([0x00, 0x00, 0x0c, 1, 2, 3])).unwrap_or_default();
        assert!(cisco.to_lowercase().contains("cisco"), "{cisco}");
        let vbox = vendor(Mac([0x08, 0x00, 0x27, 0xe5, 0x28, 0xd1])).unwrap_or_default();
        assert!(vbox.contains("PCS"), "{vbox}");
        // Locally administered, unassigned.
        assert_eq!(vendor(Mac([0x02, 0x00, 0x0a, 0x4d, 0x01, 0x01])), None);
    }
}
