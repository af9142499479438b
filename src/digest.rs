//! Content digests (`sha256:<hex>`, `sha512:<hex>`) and the hashers that compute them while bytes
//! stream to disk.

use crate::error::{AppError, AppResult, Kind};

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algo: Algorithm,
    hex: String,
}

impl Digest {
    pub fn algorithm(&self) -> Algorithm {
        self.algo
    }
    pub fn hex(&self) -> &str {
        &self.hex
    }
    pub fn sha256_of(data: &[u8]) -> Digest {
        Digest::of(Algorithm::Sha256, data)
    }
    pub fn of(algo: Algorithm, data: &[u8]) -> Digest {
        let mut h = Hasher::new(algo);
        h.update(data);
        h.finish()
    }
}

impl FromStr for Digest {
    type Err = AppError;
    fn from_str(s: &str) -> AppResult<Digest> {
        let invalid = || AppError::new(Kind::DigestInvalid, format!("invalid digest {s:?}"));
        let (algo, hex) = s.split_once(':').ok_or_else(invalid)?;
        let algo = match algo {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => {
                return Err(AppError::new(
                    Kind::DigestInvalid,
                    format!("unsupported digest algorithm in {s:?}"),
                ))
            }
        };
        if hex.len() != algo.hex_len() || !hex.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
            return Err(invalid());
        }
        Ok(Digest {
            algo,
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algo.name(), self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A running hash of one algorithm whose state is plain data: the chaining words, the bytes
/// hashed so far and the tail of an unfinished block. So it can be saved ([`Hasher::state`]) and
/// continued by another process ([`Hasher::resume`]): an upload's chunks may reach different
/// registry nodes. The block function is sha2's (`compress256`/`compress512`, with its
/// hardware-accelerated paths); buffering and padding are here. Whole blocks are compressed
/// straight from the input slice; only a block's unfinished tail is copied.
#[derive(Clone)]
pub struct Hasher {
    words: Words,
    /// Bytes hashed so far, `pending` included.
    len: u64,
    /// The start of an unfinished block (`pending_len` bytes, fewer than a block).
    pending: [u8; 128],
    pending_len: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Words {
    Sha256([u32; 8]),
    Sha512([u64; 8]),
}

/// A [`Hasher`]'s state, for storing (JSON): `words` and `pending` are hex.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HashState {
    pub algo: Algorithm,
    /// The chaining words, big-endian, concatenated.
    pub words: String,
    /// Bytes hashed so far.
    pub len: u64,
    /// The bytes of the unfinished block (fewer than a block).
    pub pending: String,
}

const SHA256_IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];
const SHA512_IV: [u64; 8] = [
    0x6a09e667f3bcc908,
    0xbb67ae8584caa73b,
    0x3c6ef372fe94f82b,
    0xa54ff53a5f1d36f1,
    0x510e527fade682d1,
    0x9b05688c2b3e6c1f,
    0x1f83d9abfb41bd6b,
    0x5be0cd19137e2179,
];

impl Words {
    fn block_len(&self) -> usize {
        match self {
            Words::Sha256(_) => 64,
            Words::Sha512(_) => 128,
        }
    }

    /// Runs the block function over `blocks`, whose length is a multiple of the block size.
    fn compress(&mut self, blocks: &[u8]) {
        use sha2::digest::consts::{U128, U64};
        use sha2::digest::generic_array::GenericArray;
        debug_assert_eq!(blocks.len() % self.block_len(), 0);
        match self {
            Words::Sha256(w) => {
                let n = blocks.len() / 64;
                // SAFETY: `GenericArray<u8, U64>` has the layout of `[u8; 64]` (size 64,
                // alignment 1), so `n * 64` initialised bytes are `n` such arrays; sha2 relies on
                // the same equivalence inside `compress256`.
                let blocks = unsafe { std::slice::from_raw_parts(blocks.as_ptr().cast::<GenericArray<u8, U64>>(), n) };
                sha2::compress256(w, blocks);
            }
            Words::Sha512(w) => {
                let n = blocks.len() / 128;
                // SAFETY: as above, with `[u8; 128]`.
                let blocks = unsafe { std::slice::from_raw_parts(blocks.as_ptr().cast::<GenericArray<u8, U128>>(), n) };
                sha2::compress512(w, blocks);
            }
        }
    }

    fn algorithm(&self) -> Algorithm {
        match self {
            Words::Sha256(_) => Algorithm::Sha256,
            Words::Sha512(_) => Algorithm::Sha512,
        }
    }

    fn to_bytes(self) -> Vec<u8> {
        match self {
            Words::Sha256(w) => w.iter().flat_map(|x| x.to_be_bytes()).collect(),
            Words::Sha512(w) => w.iter().flat_map(|x| x.to_be_bytes()).collect(),
        }
    }
}

impl Hasher {
    pub fn new(algo: Algorithm) -> Hasher {
        let words = match algo {
            Algorithm::Sha256 => Words::Sha256(SHA256_IV),
            Algorithm::Sha512 => Words::Sha512(SHA512_IV),
        };
        Hasher {
            words,
            len: 0,
            pending: [0; 128],
            pending_len: 0,
        }
    }
    /// A hasher that has already consumed `prefix` (the v1 payload checksum starts with json + "\n").
    pub fn with_prefix(algo: Algorithm, prefix: &[u8]) -> Hasher {
        let mut h = Hasher::new(algo);
        h.update(prefix);
        h
    }
    pub fn algorithm(&self) -> Algorithm {
        self.words.algorithm()
    }
    pub fn update(&mut self, mut data: &[u8]) {
        let block = self.words.block_len();
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.pending_len > 0 {
            let take = (block - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
            if self.pending_len < block {
                return;
            }
            let full = self.pending;
            self.words.compress(&full[..block]);
            self.pending_len = 0;
        }
        let whole = data.len() - data.len() % block;
        if whole > 0 {
            self.words.compress(&data[..whole]);
        }
        let rest = &data[whole..];
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }
    pub fn finish(mut self) -> Digest {
        let block = self.words.block_len();
        // Padding: 0x80, zeros, then the length in bits (64 bits for SHA-256, 128 for SHA-512)
        // closing the last block; one or two blocks in all.
        let len_field = block / 8;
        let bits = u128::from(self.len) * 8;
        let mut tail = [0u8; 256];
        let used = self.pending_len;
        tail[..used].copy_from_slice(&self.pending[..used]);
        tail[used] = 0x80;
        let total = if used < block - len_field { block } else { 2 * block };
        let bits_be = bits.to_be_bytes();
        tail[total - len_field..total].copy_from_slice(&bits_be[16 - len_field..]);
        self.words.compress(&tail[..total]);
        Digest {
            algo: self.words.algorithm(),
            hex: hex::encode(self.words.to_bytes()),
        }
    }

    /// The state so far, to be continued by [`Hasher::resume`] (here or in another process).
    pub fn state(&self) -> HashState {
        HashState {
            algo: self.algorithm(),
            words: hex::encode(self.words.to_bytes()),
            len: self.len,
            pending: hex::encode(&self.pending[..self.pending_len]),
        }
    }

    /// A hasher continuing from `state`; a state that cannot have come from [`Hasher::state`]
    /// (wrong word count, a full block pending, a length that disagrees) is refused.
    pub fn resume(state: &HashState) -> AppResult<Hasher> {
        let bad = |why: &str| AppError::new(Kind::Internal, format!("invalid hash state: {why}"));
        let mut h = Hasher::new(state.algo);
        let words = hex::decode(&state.words).map_err(|_| bad("words are not hex"))?;
        let pending = hex::decode(&state.pending).map_err(|_| bad("pending bytes are not hex"))?;
        let block = h.words.block_len();
        match &mut h.words {
            Words::Sha256(w) => {
                if words.len() != 32 {
                    return Err(bad("SHA-256 has 8 words of 4 bytes"));
                }
                for (x, b) in w.iter_mut().zip(words.chunks_exact(4)) {
                    *x = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
            Words::Sha512(w) => {
                if words.len() != 64 {
                    return Err(bad("SHA-512 has 8 words of 8 bytes"));
                }
                for (x, b) in w.iter_mut().zip(words.chunks_exact(8)) {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    *x = u64::from_be_bytes(a);
                }
            }
        }
        if pending.len() >= block {
            return Err(bad("a whole block is pending"));
        }
        if state.len % block as u64 != pending.len() as u64 {
            return Err(bad("the length disagrees with the pending bytes"));
        }
        h.len = state.len;
        h.pending[..pending.len()].copy_from_slice(&pending);
        h.pending_len = pending.len();
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let d: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        assert_eq!(d.to_string(), format!("sha256:{}", "a".repeat(64)));
        assert!(format!("sha512:{}", "0".repeat(128)).parse::<Digest>().is_ok());
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!(format!("md5:{}", "a".repeat(32)).parse::<Digest>().is_err());
        assert!(format!("sha256:{}", "A".repeat(64)).parse::<Digest>().is_err());
    }

    #[test]
    fn payload_checksum_vectors() {
        // PYREG tests/lib/test_checksums.py: json "" and "test", no layer.
        let h = Hasher::with_prefix(Algorithm::Sha256, b"\n");
        assert_eq!(
            h.finish().hex(),
            "01ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b"
        );
        let h = Hasher::with_prefix(Algorithm::Sha256, b"test\n");
        assert_eq!(
            h.finish().hex(),
            "f2ca1bb6c7e907d06dafe4687e579fce76b37e4e93b7605022da52e6ccc26fd2"
        );
    }

    fn reference(algo: Algorithm, data: &[u8]) -> String {
        use sha2::Digest as _;
        match algo {
            Algorithm::Sha256 => hex::encode(sha2::Sha256::digest(data)),
            Algorithm::Sha512 => hex::encode(sha2::Sha512::digest(data)),
        }
    }

    fn random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    const ALGOS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

    /// Every length from 0 to 300 (all the padding cases of both block sizes), fed whole and
    /// byte by byte, agrees with sha2's own hashers.
    #[test]
    fn agrees_with_sha2_for_every_short_length() {
        let data = random(300, 7);
        for algo in ALGOS {
            for n in 0..=300 {
                let whole = Digest::of(algo, &data[..n]);
                assert_eq!(whole.hex(), reference(algo, &data[..n]), "{algo:?} length {n}");
                let mut h = Hasher::new(algo);
                for b in &data[..n] {
                    h.update(std::slice::from_ref(b));
                }
                assert_eq!(h.finish(), whole, "{algo:?} byte by byte, length {n}");
            }
        }
    }

    /// 1 MiB (and block boundaries around it) split at random points, with the state taken
    /// through JSON and resumed at each split, gives sha2's digest.
    #[test]
    fn split_and_resumed_through_json_agrees_with_sha2() {
        let data = random((1 << 20) + 129, 11);
        let mut cut = 3u64;
        for algo in ALGOS {
            for n in [
                1 << 20,
                (1 << 20) + 63,
                (1 << 20) + 64,
                (1 << 20) + 127,
                (1 << 20) + 129,
            ] {
                let data = &data[..n];
                let mut h = Hasher::new(algo);
                let mut at = 0;
                while at < n {
                    cut = cut.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let step = ((cut >> 33) as usize % 200_000).min(n - at);
                    h.update(&data[at..at + step]);
                    at += step;
                    let json = serde_json::to_string(&h.state()).expect("json");
                    let state: HashState = serde_json::from_str(&json).expect("parse");
                    assert_eq!(state.len, at as u64);
                    h = Hasher::resume(&state).expect("resume");
                }
                assert_eq!(h.finish().hex(), reference(algo, data), "{algo:?} length {n}");
            }
        }
    }

    #[test]
    fn state_is_compact_plain_data() {
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(b"abc");
        let v = serde_json::to_value(h.state()).expect("json");
        assert_eq!(v["algo"], "sha256");
        assert_eq!(v["len"], 3);
        assert_eq!(v["pending"], "616263");
        assert_eq!(v["words"].as_str().map(str::len), Some(64));
    }

    #[test]
    fn bad_states_are_refused() {
        let mut h = Hasher::new(Algorithm::Sha512);
        h.update(&random(200, 3));
        let good = h.state();
        assert!(Hasher::resume(&good).is_ok());
        let short_words = HashState {
            words: good.words[..120].to_string(),
            ..good.clone()
        };
        let sha256_words = HashState {
            algo: Algorithm::Sha256,
            ..good.clone()
        };
        let not_hex = HashState {
            pending: "zz".into(),
            ..good.clone()
        };
        let full_block = HashState {
            pending: "00".repeat(128),
            len: 128,
            ..good.clone()
        };
        let wrong_len = HashState {
            len: good.len + 1,
            ..good.clone()
        };
        for (state, why) in [
            (short_words, "words"),
            (sha256_words, "words"),
            (not_hex, "hex"),
            (full_block, "block"),
            (wrong_len, "length"),
        ] {
            let err = Hasher::resume(&state).err().expect("refused");
            assert!(err.to_string().contains(why), "{err} should mention {why}");
        }
        let unknown_algo = serde_json::json!({"algo": "md5", "words": "", "len": 0, "pending": ""});
        assert!(serde_json::from_value::<HashState>(unknown_algo).is_err());
    }

    /// Throughput next to sha2's own SHA-256 on 256 MiB in 1 MiB updates; run with
    /// `cargo test --release --lib digest -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput_next_to_sha2() {
        use sha2::Digest as _;
        let chunk = random(1 << 20, 5);
        let t = std::time::Instant::now();
        let mut ours = Hasher::new(Algorithm::Sha256);
        for _ in 0..256 {
            ours.update(&chunk);
        }
        let ours = ours.finish();
        let ours_secs = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let mut theirs = sha2::Sha256::new();
        for _ in 0..256 {
            theirs.update(&chunk);
        }
        let theirs = hex::encode(theirs.finalize());
        let theirs_secs = t.elapsed().as_secs_f64();
        assert_eq!(ours.hex(), theirs);
        println!(
            "256 MiB: ours {:.0} MB/s, sha2 {:.0} MB/s",
            268.435456 / ours_secs,
            268.435456 / theirs_secs
        );
    }
}
