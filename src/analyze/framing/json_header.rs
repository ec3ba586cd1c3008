//! `json-header` framing: a 4-byte little-endian header length, a JSON object header,
//! then a body of the header's `file_size` bytes.
//!
//! The header (at most [`MAX_HEADER`] bytes) is buffered and parsed; the body is never
//! stored: its MD5 is computed as it streams past and compared with the header's `MD5`.
//! Header text is escaped ([`escape_text`]) before it reaches a report.

use std::collections::BTreeMap;

use md5::{Digest, Md5};

use super::{escape_text, Feed, Framer, MAX_HEADER};
use crate::report::streams::MessageInfo;

enum JsonState {
    Len { pos: usize, buf: [u8; 4] },
    Header { need: usize, buf: Vec<u8> },
    Body { rem: u64 },
}

/// `json-header`: 4-byte LE header length H, H bytes of JSON object, then a body of the
/// header's `file_size` bytes (0 if absent); the body's MD5 is checked against `MD5`.
pub(super) struct JsonHeaderFramer {
    state: JsonState,
    max: u64,
    md5: Md5,
    info: Option<MessageInfo>,
    expected_md5: Option<String>,
}

impl JsonHeaderFramer {
    pub(super) fn new(max: u64) -> Self {
        JsonHeaderFramer {
            state: JsonState::Len {
                pos: 0,
                buf: [0; 4],
            },
            max,
            md5: Md5::new(),
            info: None,
            expected_md5: None,
        }
    }

    /// Parses a complete header; on success returns the body size.
    fn header(&mut self, buf: &[u8]) -> Result<u64, String> {
        let v: serde_json::Value =
            serde_json::from_slice(buf).map_err(|e| format!("header is not JSON ({e})"))?;
        let serde_json::Value::Object(map) = v else {
            return Err("header is JSON but not an object".into());
        };
        let size = match map.get("file_size") {
            None => 0,
            Some(s) => s
                .as_u64()
                .ok_or_else(|| format!("file_size {s} is not a non-negative integer"))?,
        };
        if size > self.max {
            return Err(format!(
                "file_size {size} is over the {}-byte cap (--max-message)",
                self.max
            ));
        }
        let mut fields = BTreeMap::new();
        for (k, v) in &map {
            let text = match v {
                serde_json::Value::String(s) => escape_text(s),
                other => escape_text(&other.to_string()),
            };
            fields.insert(escape_text(k), text);
        }
        self.expected_md5 = map
            .get("MD5")
            .and_then(|m| m.as_str())
            .map(|s| s.to_ascii_lowercase());
        self.md5 = Md5::new();
        self.info = Some(MessageInfo {
            header: Some(fields),
            header_len: Some(buf.len() as u64),
            body_len: Some(size),
            ..MessageInfo::default()
        });
        Ok(size)
    }

    fn finish_body(&mut self) {
        let digest = std::mem::take(&mut self.md5).finalize();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        if let Some(info) = self.info.as_mut() {
            info.md5_ok = self.expected_md5.as_ref().map(|e| *e == hex);
            info.md5 = Some(hex);
        }
    }
}

impl Framer for JsonHeaderFramer {
    fn feed(&mut self, data: &[u8]) -> Feed {
        match &mut self.state {
            JsonState::Len { pos, buf } => {
                let n = (4 - *pos).min(data.len());
                buf[*pos..*pos + n].copy_from_slice(&data[..n]);
                *pos += n;
                if *pos < 4 {
                    return Feed::take(n as u64);
                }
                let h = u32::from_le_bytes(*buf) as usize;
                if h == 0 || h > MAX_HEADER {
                    return Feed::fail(
                        n as u64,
                        format!("JSON header length {h} is not within 1..={MAX_HEADER}"),
                    );
                }
                self.state = JsonState::Header {
                    need: h,
                    buf: Vec::with_capacity(h.min(4096)),
                };
                Feed::take(n as u64)
            }
            JsonState::Header { need, buf } => {
                let n = (*need - buf.len()).min(data.len());
                buf.extend_from_slice(&data[..n]);
                if buf.len() < *need {
                    return Feed::take(n as u64);
                }
                let header = std::mem::take(buf);
                match self.header(&header) {
                    Err(e) => Feed::fail(n as u64, e),
                    Ok(size) => {
                        let ended = size == 0;
                        if ended {
                            self.finish_body();
                            self.state = JsonState::Len {
                                pos: 0,
                                buf: [0; 4],
                            };
                        } else {
                            self.state = JsonState::Body { rem: size };
                        }
                        Feed {
                            taken: n as u64,
                            confirmed: true,
                            ended,
                            error: None,
                        }
                    }
                }
            }
            JsonState::Body { rem } => {
                let n = (*rem).min(data.len() as u64);
                // n <= data.len(), so the cast back is exact.
                self.md5.update(&data[..n as usize]);
                *rem -= n;
                let ended = *rem == 0;
                if ended {
                    self.finish_body();
                    self.state = JsonState::Len {
                        pos: 0,
                        buf: [0; 4],
                    };
                }
                Feed {
                    taken: n,
                    ended,
                    ..Feed::default()
                }
            }
        }
    }

    fn skip(&mut self, len: u64) -> Feed {
        let JsonState::Body { rem } = &mut self.state else {
            return Feed::take(0);
        };
        let n = (*rem).min(len);
        *rem -= n;
        // Bytes of the body are missing: the digest cannot be checked.
        self.expected_md5 = None;
        if let Some(i) = self.info.as_mut() {
            i.md5_unverifiable = true;
        }
        let ended = *rem == 0;
        if ended {
            self.finish_body();
            self.state = JsonState::Len {
                pos: 0,
                buf: [0; 4],
            };
        }
        Feed {
            taken: n,
            ended,
            ..Feed::default()
        }
    }

    fn take_info(&mut self) -> Option<MessageInfo> {
        self.info.take()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::frame;
    use super::super::DEFAULT_MAX_MESSAGE;
    use super::*;
    #[test]
    fn json_header_checks_md5() {
        let body = b"hello world";
        let md5: String = Md5::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let hdr = format!(r#"{{"file_name":"a\nb.txt","file_size":11,"MD5":"{md5}"}}"#);
        let mut data = (hdr.len() as u32).to_le_bytes().to_vec();
        data.extend_from_slice(hdr.as_bytes());
        data.extend_from_slice(body);
        let hdr2 = r#"{"status":"ok"}"#;
        data.extend_from_slice(&(hdr2.len() as u32).to_le_bytes());
        data.extend_from_slice(hdr2.as_bytes());
        let want = vec![4 + hdr.len() as u64 + 11, 4 + hdr2.len() as u64];
        assert_eq!(frame("json-header", &data, 3).unwrap(), want);

        let mut f = JsonHeaderFramer::new(DEFAULT_MAX_MESSAGE);
        let mut rest = &data[..];
        let mut infos = Vec::new();
        while !rest.is_empty() {
            let r = f.feed(rest);
            if r.ended {
                infos.push(f.take_info().unwrap());
            }
            rest = &rest[r.taken as usize..];
        }
        assert_eq!(infos[0].md5_ok, Some(true));
        let h = infos[0].header.as_ref().unwrap();
        assert_eq!(h["file_name"], "a\\nb.txt");
        assert_eq!(infos[1].md5_ok, None);

        // A corrupted body fails the check but not the framing.
        let mut bad = data.clone();
        let at = 4 + hdr.len() + 3;
        bad[at] ^= 1;
        let mut f = JsonHeaderFramer::new(DEFAULT_MAX_MESSAGE);
        let mut rest = &bad[..];
        loop {
            let r = f.feed(rest);
            rest = &rest[r.taken as usize..];
            if r.ended {
                break;
            }
        }
        assert_eq!(f.take_info().unwrap().md5_ok, Some(false));
        // Not JSON.
        let mut g = 5u32.to_le_bytes().to_vec();
        g.extend_from_slice(b"hello");
        assert!(frame("json-header", &g, 9)
            .unwrap_err()
            .1
            .contains("not JSON"));
    }
}
