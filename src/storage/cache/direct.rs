//! Writing a copy around the page cache (`O_DIRECT`), in aligned blocks.
//!
//! Why: a buffered write of a blob the node has just pulled lands in the page cache as dirty
//! pages, and once the system holds many (a store on the same disk that has just taken a few
//! GiB, say) the kernel throttles every writer: measured here, buffered writes fell from 3 GB/s
//! to 220-550 MB/s, below the speed of the pull being copied, so the copy held the client back.
//! Direct writes of 4 MiB blocks ran at 0.9-1.2 GB/s however many pages were dirty, cost the
//! CPU one copy into the block buffer, and leave the page cache to what is read.
//!
//! Once complete and durable, the file is read back through the page cache, still on the
//! writer's thread (a blob just pulled is the likeliest to be pulled again): without that, the
//! next pull of it waited on the disk (measured here: 155-185 MB/s, against 2 GB/s from the
//! page cache). `POSIX_FADV_WILLNEED` does not do it: the kernel reads at most one read-ahead
//! window (8 MiB here) of what it is asked for.
//!
//! Where the filesystem refuses `O_DIRECT` (tmpfs), the file is written the usual way.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Alignment of the buffer's address, of every write's offset and of its length: 4 KiB covers
/// 512-byte and 4 KiB logical blocks.
const ALIGN: usize = 4096;
/// Bytes per direct write.
const BLOCK: usize = 4 << 20;

pub struct CopyFile {
    file: File,
    /// `Some` while writing directly: the block being filled (at `start` of an oversized
    /// allocation, so that it is aligned) and how much of it is filled.
    block: Option<Block>,
    written: u64,
}

struct Block {
    buf: Vec<u8>,
    start: usize,
    filled: usize,
}

impl CopyFile {
    /// Creates `path` (which must not exist).
    pub fn create(path: &Path) -> io::Result<CopyFile> {
        let direct = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        match direct {
            Ok(file) => {
                let buf = vec![0u8; BLOCK + ALIGN];
                let start = buf.as_ptr().align_offset(ALIGN);
                Ok(CopyFile {
                    file,
                    block: Some(Block { buf, start, filled: 0 }),
                    written: 0,
                })
            }
            // Linux creates the file before it refuses the flag: open what it created.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(CopyFile {
                file: OpenOptions::new().write(true).create(true).truncate(true).open(path)?,
                block: None,
                written: 0,
            }),
            Err(e) => Err(e),
        }
    }

    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        let Some(block) = self.block.as_mut() else {
            return self.file.write_all(data);
        };
        while !data.is_empty() {
            let n = data.len().min(BLOCK - block.filled);
            let at = block.start + block.filled;
            block.buf[at..at + n].copy_from_slice(&data[..n]);
            block.filled += n;
            data = &data[n..];
            if block.filled == BLOCK {
                self.file
                    .write_all_at(&block.buf[block.start..block.start + BLOCK], self.written)?;
                self.written += BLOCK as u64;
                block.filled = 0;
            }
        }
        Ok(())
    }

    /// Writes what is left and makes the file durable.
    pub fn finish(mut self) -> io::Result<()> {
        if let Some(block) = self.block.as_mut() {
            if block.filled > 0 {
                // The tail goes out padded to the alignment, then the file is cut to its size.
                let padded = block.filled.next_multiple_of(ALIGN);
                let (from, to) = (block.start + block.filled, block.start + padded);
                block.buf[from..to].fill(0);
                self.file.write_all_at(&block.buf[block.start..to], self.written)?;
                self.file.set_len(self.written + block.filled as u64)?;
            }
        }
        self.file.sync_all()
    }

    /// Reads the file at `path` through the page cache, so that its pages are there.
    pub fn read_back(path: &Path) -> io::Result<()> {
        let file = File::open(path)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut at = 0u64;
        loop {
            match file.read_at(&mut buf, at) {
                Ok(0) => return Ok(()),
                Ok(n) => at += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_come_out_whole_at_every_size_around_the_blocks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data: Vec<u8> = (0..(2 * BLOCK + 3 * ALIGN + 17) as u32)
            .map(|i| (i % 241) as u8)
            .collect();
        for (i, len) in [0, 1, ALIGN, ALIGN + 1, BLOCK - 1, BLOCK, BLOCK + 5, data.len()]
            .into_iter()
            .enumerate()
        {
            let path = dir.path().join(format!("copy-{i}"));
            let mut copy = CopyFile::create(&path).expect("create");
            // In uneven pieces, as they come off a socket.
            for piece in data[..len].chunks(70_001) {
                copy.write(piece).expect("write");
            }
            copy.finish().expect("finish");
            assert!(std::fs::read(&path).expect("read") == data[..len], "length {len}");
        }
        assert!(
            CopyFile::create(&dir.path().join("copy-0")).is_err(),
            "an existing file is not overwritten"
        );
    }
}
