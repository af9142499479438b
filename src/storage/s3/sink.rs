//! Writing one object as bytes arrive: hashed on the way, held until a part is full, then sent
//! as one PUT (small objects) or as the parts of a multipart upload, a few in flight at once.
//! Memory is bounded by the part size times the parts in flight, however large the object.

use super::PARTS_IN_FLIGHT;
use crate::digest::Hasher;
use crate::storage::driver::{Sink, WriteOutcome};
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use object_store::aws::AmazonS3;
use object_store::path::Path as ObjectPath;
use object_store::{MultipartUpload, ObjectStore, PutPayload, UploadPart};
use std::io;
use std::sync::Arc;

pub struct S3Sink {
    store: Arc<AmazonS3>,
    path: ObjectPath,
    part_size: usize,
    hashers: Vec<Hasher>,
    written: u64,
    /// The part being filled (chunks as they came: no copy).
    buffer: Vec<Bytes>,
    buffered: usize,
    /// Started once the object outgrows one part.
    upload: Option<Box<dyn MultipartUpload>>,
    in_flight: FuturesUnordered<UploadPart>,
    failed: Option<io::Error>,
}

impl S3Sink {
    pub fn new(store: Arc<AmazonS3>, path: ObjectPath, part_size: usize, hashers: Vec<Hasher>) -> S3Sink {
        S3Sink {
            store,
            path,
            part_size,
            hashers,
            written: 0,
            buffer: Vec::new(),
            buffered: 0,
            upload: None,
            in_flight: FuturesUnordered::new(),
            failed: None,
        }
    }

    fn take_part(&mut self) -> PutPayload {
        self.buffered = 0;
        PutPayload::from_iter(std::mem::take(&mut self.buffer))
    }

    /// Sends the buffered part, waiting first while too many are in flight.
    async fn ship(&mut self) -> io::Result<()> {
        if self.upload.is_none() {
            self.upload = Some(self.store.put_multipart(&self.path).await.map_err(io::Error::from)?);
        }
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            if let Some(done) = self.in_flight.next().await {
                done.map_err(io::Error::from)?;
            }
        }
        let part = self.take_part();
        if let Some(upload) = self.upload.as_mut() {
            self.in_flight.push(upload.put_part(part));
        }
        Ok(())
    }

    async fn complete(&mut self) -> io::Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if self.upload.is_none() {
            let payload = self.take_part();
            self.store.put(&self.path, payload).await.map_err(io::Error::from)?;
            return Ok(());
        }
        if self.buffered > 0 {
            self.ship().await?;
        }
        while let Some(done) = self.in_flight.next().await {
            done.map_err(io::Error::from)?;
        }
        if let Some(upload) = self.upload.as_mut() {
            upload.complete().await.map_err(io::Error::from)?;
        }
        Ok(())
    }

    async fn cancel(&mut self) {
        self.in_flight.clear();
        if let Some(mut upload) = self.upload.take() {
            if let Err(e) = upload.abort().await {
                log::warn!("aborting the multipart upload of {}: {e}", self.path);
            }
        }
    }
}

#[async_trait]
impl Sink for S3Sink {
    async fn send(&mut self, chunk: Bytes) -> Result<(), ()> {
        if self.failed.is_some() {
            return Err(());
        }
        for h in &mut self.hashers {
            h.update(&chunk);
        }
        self.written += chunk.len() as u64;
        self.buffered += chunk.len();
        self.buffer.push(chunk);
        if self.buffered >= self.part_size {
            if let Err(e) = self.ship().await {
                self.failed = Some(e);
                return Err(());
            }
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> io::Result<WriteOutcome> {
        match self.complete().await {
            Ok(()) => Ok(WriteOutcome {
                hashers: std::mem::take(&mut self.hashers),
                written: self.written,
            }),
            Err(e) => {
                self.cancel().await;
                Err(e)
            }
        }
    }

    async fn abort(mut self: Box<Self>) -> io::Result<()> {
        self.cancel().await;
        Ok(())
    }
}
