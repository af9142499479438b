//! Images as Docker 1.x pushes them: random 64-hex ids, json with `parent`, gzip tar layers.

use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

#[derive(Clone, Debug)]
pub struct Image {
    pub id: String,
    pub parent: Option<String>,
    pub json: Vec<u8>,
    pub layer: Vec<u8>,
}

impl Image {
    /// `sha256:` of json + "\n" + layer as sent: Docker's `X-Docker-Checksum-Payload`.
    pub fn payload_checksum(&self) -> String {
        let mut h = Sha256::new();
        h.update(&self.json);
        h.update(b"\n");
        h.update(&self.layer);
        format!("sha256:{}", hex::encode(h.finalize()))
    }
}

pub fn random_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

pub fn gzip_tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::default()));
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_400_000_000);
        header.set_cksum();
        builder
            .append_data(&mut header, name, data.as_slice())
            .expect("tar append");
    }
    let gz = builder.into_inner().expect("tar finish");
    gz.finish().expect("gzip finish")
}

pub fn image_json(id: &str, parent: Option<&str>) -> Vec<u8> {
    let mut v = serde_json::json!({
        "id": id,
        "created": "2014-10-17T15:28:17.563811562Z",
        "container_config": {"Cmd": ["/bin/sh"]},
        "docker_version": "1.3.2",
        "architecture": "amd64",
        "os": "linux",
        "Size": 0
    });
    if let Some(p) = parent {
        v["parent"] = serde_json::Value::String(p.to_string());
    }
    serde_json::to_vec(&v).expect("json")
}

/// `n` images, base first, each layer a gzip tar with a few files of pseudo-random content.
pub fn chain(n: usize) -> Vec<Image> {
    let mut out: Vec<Image> = Vec::new();
    for i in 0..n {
        let id = random_id();
        let parent = out.last().map(|p| p.id.clone());
        let files: Vec<(String, Vec<u8>)> = (0..3)
            .map(|f| {
                let len = 1000 + 7919 * (i + 1) * (f + 1);
                let data: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
                (format!("layer{i}/file{f}.bin"), data)
            })
            .collect();
        out.push(Image {
            json: image_json(&id, parent.as_deref()),
            id,
            parent,
            layer: gzip_tar(&files),
        });
    }
    out
}
