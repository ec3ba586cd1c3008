//! `-f/--filter EXPR`: a real libpcap filter expression, compiled by libpcap itself, so the
//! semantics are exactly tcpdump's.
//!
//! libpcap is loaded at run time (`libloading`), never linked: `cargo build` needs no
//! system library, and only a run that asks for a filter needs libpcap installed (the error
//! names the package). The expression is compiled once per link type (pcap_open_dead +
//! pcap_compile) and applied to each record with pcap_offline_filter. Frame numbers are
//! not changed by filtering (Wireshark's numbering of the unfiltered input).
//!
//! Invariant: every pointer handed to libpcap comes from libpcap itself (pcap_t, compiled
//! program) or from a live Rust value for the duration of the call.

use std::ffi::{c_char, c_int, c_long, c_uint, c_void, CStr, CString};

use libloading::Library;

use super::RawPacket;

#[repr(C)]
struct BpfProgram {
    bf_len: c_uint,
    bf_insns: *mut c_void,
}

#[repr(C)]
struct Timeval {
    tv_sec: c_long,
    tv_usec: c_long,
}

#[repr(C)]
struct PktHdr {
    ts: Timeval,
    caplen: u32,
    len: u32,
}

type OpenDead = unsafe extern "C" fn(c_int, c_int) -> *mut c_void;
type Compile =
    unsafe extern "C" fn(*mut c_void, *mut BpfProgram, *const c_char, c_int, u32) -> c_int;
type OfflineFilter = unsafe extern "C" fn(*const BpfProgram, *const PktHdr, *const u8) -> c_int;
type FreeCode = unsafe extern "C" fn(*mut BpfProgram);
type GetErr = unsafe extern "C" fn(*mut c_void) -> *mut c_char;
type Close = unsafe extern "C" fn(*mut c_void);

struct Api {
    open_dead: OpenDead,
    compile: Compile,
    offline_filter: OfflineFilter,
    freecode: FreeCode,
    geterr: GetErr,
    close: Close,
    // Keeps the library mapped while the function pointers above are used.
    _lib: Library,
}

/// One compiled program for one link type.
struct Compiled {
    link_type: u32,
    /// None when the expression does not compile for this link type (matches nothing).
    prog: Option<Box<BpfProgram>>,
}

/// A compiled capture filter.
pub struct Filter {
    api: Api,
    expr: CString,
    compiled: Vec<Compiled>,
    /// Link types the expression could not be compiled for, with libpcap's message.
    pub failed: Vec<(u32, String)>,
}

const LIBS: [&str; 4] = [
    "libpcap.so.1",
    "libpcap.so.0.8",
    "libpcap.so",
    "libpcap.dylib",
];

fn load() -> Result<Api, String> {
    let mut last = String::new();
    for name in LIBS {
        // SAFETY: loading libpcap runs its (trivial) initialisers; it is a C library with no
        // Rust invariants to break.
        match unsafe { Library::new(name) } {
            Ok(lib) => {
                // SAFETY: the symbol types match libpcap's documented prototypes.
                unsafe {
                    let api = Api {
                        open_dead: *lib
                            .get::<OpenDead>(b"pcap_open_dead\0")
                            .map_err(|e| e.to_string())?,
                        compile: *lib
                            .get::<Compile>(b"pcap_compile\0")
                            .map_err(|e| e.to_string())?,
                        offline_filter: *lib
                            .get::<OfflineFilter>(b"pcap_offline_filter\0")
                            .map_err(|e| e.to_string())?,
                        freecode: *lib
                            .get::<FreeCode>(b"pcap_freecode\0")
                            .map_err(|e| e.to_string())?,
                        geterr: *lib
                            .get::<GetErr>(b"pcap_geterr\0")
                            .map_err(|e| e.to_string())?,
                        close: *lib
                            .get::<Close>(b"pcap_close\0")
                            .map_err(|e| e.to_string())?,
                        _lib: lib,
                    };
                    return Ok(api);
                }
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!(
        "--filter needs libpcap at run time and none was found ({last}); install it with `apt-get install libpcap0.8` (Debian/Ubuntu) or `dnf install libpcap`"
    ))
}

/// Why a filter could not be made.
#[derive(Debug)]
pub enum FilterError {
    /// libpcap is not installed.
    NoLibpcap(String),
    /// libpcap rejected the expression (a usage error).
    Invalid(String),
}

impl Filter {
    /// Loads libpcap and compiles `expr` for `first_link_type`, so a bad expression fails
    /// before anything is read.
    pub fn new(expr: &str, first_link_type: u32) -> Result<Filter, FilterError> {
        let api = load().map_err(FilterError::NoLibpcap)?;
        let expr_c = CString::new(expr)
            .map_err(|_| FilterError::Invalid("the filter contains a NUL byte".into()))?;
        let mut f = Filter {
            api,
            expr: expr_c,
            compiled: Vec::new(),
            failed: Vec::new(),
        };
        match f.compile(first_link_type) {
            Ok(prog) => f.compiled.push(Compiled {
                link_type: first_link_type,
                prog: Some(prog),
            }),
            Err(msg) => {
                return Err(FilterError::Invalid(format!(
                    "invalid filter \"{expr}\": {msg}"
                )))
            }
        }
        Ok(f)
    }

    fn compile(&self, link_type: u32) -> Result<Box<BpfProgram>, String> {
        // SAFETY: pcap_open_dead returns an owned handle or null; it is closed below.
        let p = unsafe { (self.api.open_dead)(link_type as c_int, 262_144) };
        if p.is_null() {
            return Err("pcap_open_dead failed".into());
        }
        let mut prog = Box::new(BpfProgram {
            bf_len: 0,
            bf_insns: std::ptr::null_mut(),
        });
        // PCAP_NETMASK_UNKNOWN: broadcast tests then fail to compile, as in tcpdump -r.
        let netmask = 0xffff_ffffu32;
        // SAFETY: p is a live pcap_t, prog a live bpf_program, expr a NUL-terminated string.
        let rc = unsafe { (self.api.compile)(p, &mut *prog, self.expr.as_ptr(), 1, netmask) };
        let result = if rc == 0 {
            Ok(prog)
        } else {
            // SAFETY: pcap_geterr returns a NUL-terminated buffer owned by p, valid until close.
            let msg = unsafe { CStr::from_ptr((self.api.geterr)(p)) }
                .to_string_lossy()
                .into_owned();
            Err(msg)
        };
        // SAFETY: p came from pcap_open_dead and is not used after this.
        unsafe { (self.api.close)(p) };
        result
    }

    /// True when the record passes the filter.
    pub fn matches(&mut self, p: &RawPacket<'_>) -> bool {
        let idx = match self
            .compiled
            .iter()
            .position(|c| c.link_type == p.link_type)
        {
            Some(i) => i,
            None => {
                let prog = match self.compile(p.link_type) {
                    Ok(prog) => Some(prog),
                    Err(msg) => {
                        self.failed.push((p.link_type, msg));
                        None
                    }
                };
                self.compiled.push(Compiled {
                    link_type: p.link_type,
                    prog,
                });
                self.compiled.len() - 1
            }
        };
        let Some(prog) = self.compiled[idx].prog.as_deref() else {
            return false;
        };
        let hdr = PktHdr {
            ts: Timeval {
                tv_sec: (p.ts_ns / 1_000_000_000) as c_long,
                tv_usec: (p.ts_ns % 1_000_000_000 / 1000) as c_long,
            },
            caplen: p.data.len() as u32,
            len: p.wire_len.max(p.data.len() as u32),
        };
        // SAFETY: prog is a program compiled by pcap_compile; hdr.caplen equals the length
        // of the data slice, so libpcap's BPF interpreter reads only inside it.
        unsafe { (self.api.offline_filter)(prog, &hdr, p.data.as_ptr()) != 0 }
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        for c in &mut self.compiled {
            if let Some(prog) = c.prog.as_deref_mut() {
                // SAFETY: prog was filled by pcap_compile and is freed once.
                unsafe { (self.api.freecode)(prog) };
            }
        }
    }
}
