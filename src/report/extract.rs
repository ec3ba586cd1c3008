//! `--extract DIR`: each direction's reassembled bytes (and, with `--extract-messages`, each
//! message) written to files under DIR as they are delivered.
//!
//! Invariants:
//! - File names are built only from the connection id, the 4-tuple and the direction,
//!   with every character outside `[A-Za-z0-9.-]` replaced, and never contain a path
//!   separator: nothing is written outside DIR.
//! - Files are created with `create_new` (O_CREAT|O_EXCL, which does not follow a symlink
//!   planted under the name); an existing file is an error unless `--force`, which removes
//!   it (the link itself, never its target) first.
//! - A stream file's byte at position N is the stream's byte at offset N: a gap leaves a
//!   hole of zeros (sparse where the file system allows), so offsets in the report can be
//!   looked up in the file directly.
//! - At most [`MAX_OPEN`] files are open at once; the least recently used is closed and
//!   reopened later at its position. Memory is bounded; no stream is held in memory.
//! - The first I/O error stops all further writing and is returned by `close`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use crate::analyze::streams::{StreamKey, StreamSink};
use crate::analyze::Dir;

/// Files kept open at once.
pub const MAX_OPEN: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum FileKey {
    Stream(u64, Dir),
    Message(u64, Dir, u64),
}

struct OpenFile {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    /// The write position (the next stream offset for a stream file).
    pos: u64,
    used: u64,
}

/// Writes extracted streams and messages under one directory.
pub struct Extractor {
    dir: PathBuf,
    messages: bool,
    force: bool,
    files: FxHashMap<FileKey, OpenFile>,
    open: usize,
    tick: u64,
    error: Option<io::Error>,
    /// Files written so far.
    pub written: u64,
}

/// `10.0.0.1.80`, `2001-db8--1.443`: an endpoint as a file-name part.
fn endpoint_name(a: &SocketAddr) -> String {
    let ip = a.ip().to_string().replace(':', "-");
    sanitize(&format!("{ip}.{}", a.port()))
}

/// Keeps `[A-Za-z0-9.-]`, replaces everything else; never yields "." or "..".
pub fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.chars().all(|c| c == '.') {
        out.replace('.', "_")
    } else {
        out
    }
}

/// The file name of a direction's stream (`c000001-10.0.0.1.5000-10.0.0.2.80.orig.bin`).
pub fn stream_file_name(key: &StreamKey) -> String {
    format!(
        "c{:06}-{}-{}.{}.bin",
        key.conn,
        endpoint_name(&key.src),
        endpoint_name(&key.dst),
        key.dir.name()
    )
}

/// The file name of one message of a direction (`...orig.m000003.bin`).
pub fn message_file_name(key: &StreamKey, index: u64) -> String {
    format!(
        "c{:06}-{}-{}.{}.m{:06}.bin",
        key.conn,
        endpoint_name(&key.src),
        endpoint_name(&key.dst),
        key.dir.name(),
        index
    )
}

impl Extractor {
    /// Creates DIR (and its parents) if missing.
    pub fn new(dir: &Path, messages: bool, force: bool) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(Extractor {
            dir: dir.to_path_buf(),
            messages,
            force,
            files: FxHashMap::default(),
            open: 0,
            tick: 0,
            error: None,
            written: 0,
        })
    }

    fn create(&self, name: &str) -> io::Result<File> {
        debug_assert!(!name.contains('/') && !name.contains('\\'));
        let path = self.dir.join(name);
        if self.force {
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} is a directory", path.display()),
                    ))
                }
                Ok(_) => fs::remove_file(&path)?,
                Err(_) => {}
            }
        }
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "{} already exists; use --force to overwrite or choose another --extract directory",
                            path.display()
                        ),
                    )
                } else {
                    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
                }
            })
    }

    /// Closes the least recently used open file when too many are open.
    fn make_room(&mut self) -> io::Result<()> {
        if self.open < MAX_OPEN {
            return Ok(());
        }
        let victim = self
            .files
            .iter()
            .filter(|(_, f)| f.file.is_some())
            .min_by_key(|(_, f)| f.used)
            .map(|(k, _)| *k);
        if let Some(k) = victim {
            if let Some(f) = self.files.get_mut(&k) {
                if let Some(mut w) = f.file.take() {
                    w.flush()?;
                }
                self.open -= 1;
            }
        }
        Ok(())
    }

    fn write(&mut self, key: FileKey, name: impl FnOnce() -> String, at: Option<u64>, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.try_write(key, name, at, data) {
            self.error = Some(e);
        }
    }

    fn try_write(
        &mut self,
        key: FileKey,
        name: impl FnOnce() -> String,
        at: Option<u64>,
        data: &[u8],
    ) -> io::Result<()> {
        self.tick += 1;
        let tick = self.tick;
        if !self.files.contains_key(&key) {
            self.make_room()?;
            let name = name();
            let file = self.create(&name)?;
            self.written += 1;
            self.open += 1;
            self.files.insert(
                key,
                OpenFile {
                    path: self.dir.join(name),
                    file: Some(BufWriter::with_capacity(1 << 16, file)),
                    pos: 0,
                    used: tick,
                },
            );
        } else if self.files.get(&key).is_some_and(|f| f.file.is_none()) {
            self.make_room()?;
            if let Some(f) = self.files.get_mut(&key) {
                let mut file = OpenOptions::new().write(true).open(&f.path)?;
                file.seek(SeekFrom::Start(f.pos))?;
                f.file = Some(BufWriter::with_capacity(1 << 16, file));
                self.open += 1;
            }
        }
        let Some(f) = self.files.get_mut(&key) else {
            return Ok(());
        };
        f.used = tick;
        let Some(w) = f.file.as_mut() else {
            return Ok(());
        };
        if let Some(at) = at {
            if at != f.pos {
                w.seek(SeekFrom::Start(at))?;
                f.pos = at;
            }
        }
        w.write_all(data)?;
        f.pos += data.len() as u64;
        Ok(())
    }

    fn close_file(&mut self, key: FileKey) {
        if let Some(mut f) = self.files.remove(&key) {
            if let Some(mut w) = f.file.take() {
                self.open -= 1;
                if let Err(e) = w.flush() {
                    self.error.get_or_insert(e);
                }
            }
        }
    }
}

impl StreamSink for Extractor {
    fn data(&mut self, key: &StreamKey, offset: u64, data: &[u8]) {
        let k = *key;
        self.write(
            FileKey::Stream(key.conn, key.dir),
            || stream_file_name(&k),
            Some(offset),
            data,
        );
    }

    fn message_data(&mut self, key: &StreamKey, index: u64, data: &[u8]) {
        if !self.messages {
            return;
        }
        let k = *key;
        self.write(
            FileKey::Message(key.conn, key.dir, index),
            || message_file_name(&k, index),
            None,
            data,
        );
    }

    fn message_end(&mut self, key: &StreamKey, index: u64) {
        self.close_file(FileKey::Message(key.conn, key.dir, index));
    }

    fn end(&mut self, key: &StreamKey) {
        self.close_file(FileKey::Stream(key.conn, key.dir));
    }

    fn wants_messages(&self) -> bool {
        self.messages
    }

    fn close(&mut self) -> io::Result<()> {
        let keys: Vec<FileKey> = self.files.keys().copied().collect();
        for k in keys {
            self.close_file(k);
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_directory() {
        for s in ["../../etc/passwd", "..", ".", "a/b\\c", "x\u{0}y"] {
            let n = sanitize(s);
            assert!(
                !n.contains('/') && !n.contains('\\') && n != "." && n != "..",
                "{n}"
            );
        }
        let key = StreamKey {
            conn: 7,
            dir: Dir::Resp,
            src: "[2001:db8::1]:443".parse().unwrap(),
            dst: "10.0.0.2:5000".parse().unwrap(),
        };
        assert_eq!(
            stream_file_name(&key),
            "c000007-2001-db8--1.443-10.0.0.2.5000.resp.bin"
        );
        assert_eq!(
            message_file_name(&key, 3),
            "c000007-2001-db8--1.443-10.0.0.2.5000.resp.m000003.bin"
        );
    }

    #[test]
    fn refuses_to_overwrite_and_never_follows_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        fs::write(&outside, b"keep me").unwrap();
        let ex_dir = dir.path().join("ex");
        let key = StreamKey {
            conn: 1,
            dir: Dir::Orig,
            src: "10.0.0.1:1".parse().unwrap(),
            dst: "10.0.0.2:2".parse().unwrap(),
        };
        fs::create_dir_all(&ex_dir).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&outside, ex_dir.join(stream_file_name(&key))).unwrap();
        let mut ex = Extractor::new(&ex_dir, false, false).unwrap();
        ex.data(&key, 0, b"new bytes");
        let err = ex.close().unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(fs::read(&outside).unwrap(), b"keep me");
        // --force replaces the link itself, not its target.
        let mut ex = Extractor::new(&ex_dir, false, true).unwrap();
        ex.data(&key, 0, b"ab");
        ex.data(&key, 5, b"cd");
        ex.close().unwrap();
        assert_eq!(fs::read(&outside).unwrap(), b"keep me");
        assert_eq!(
            fs::read(ex_dir.join(stream_file_name(&key))).unwrap(),
            b"ab\0\0\0cd"
        );
    }

    #[test]
    fn many_streams_with_few_open_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut ex = Extractor::new(dir.path(), false, false).unwrap();
        let keys: Vec<StreamKey> = (0..MAX_OPEN as u64 + 40)
            .map(|i| StreamKey {
                conn: i + 1,
                dir: Dir::Orig,
                src: "10.0.0.1:1".parse().unwrap(),
                dst: "10.0.0.2:2".parse().unwrap(),
            })
            .collect();
        for round in 0..3u8 {
            for k in &keys {
                ex.data(k, u64::from(round), &[round]);
            }
        }
        assert!(ex.open <= MAX_OPEN);
        ex.close().unwrap();
        for k in &keys {
            assert_eq!(
                fs::read(dir.path().join(stream_file_name(k))).unwrap(),
                [0, 1, 2]
            );
        }
    }
}
