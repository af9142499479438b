//! v1 images and who may touch them. Image ids are global, but every owner has their own copy of
//! an id (see `registry::v1::images`), and a copy a caller may not read does not exist for them:
//! every route answers them exactly as for an id nobody pushed, and they may push their own copy
//! under it. So each request on an image id first decides which copy it means.
//!
//! A copy is readable by its owner, admins, and readers of any repository it belongs to.

use super::{Gate, Identity};
use crate::error::{AppError, AppResult, Kind};
use crate::index::Access;
use crate::names::{ImageCopy, ImageId, Owner, RepoName};
use crate::registry::v1::images::Images;

/// Who uploads an image, and the repository a token pushes it into (new images join it).
#[derive(Debug, Clone)]
pub struct Uploader {
    pub name: String,
    pub repo: Option<RepoName>,
}

impl Uploader {
    /// The owner of what this uploader writes: their own copy.
    pub fn owner(&self) -> Owner {
        Owner::new(&self.name)
    }
}

fn absent() -> AppError {
    AppError::not_found("Image not found")
}

impl Gate {
    /// The copy of image `id` that `who` reads, or 404 (as for an id nobody pushed) when they may
    /// read none. In order: the copy held by the repository the request is about (`repo`, else
    /// the one a v1 token names), so a pull reads exactly what the repository was tagged with;
    /// the caller's own copy; any other copy they may read.
    pub async fn image_for_read(
        &self,
        who: &Identity,
        images: &Images,
        id: &ImageId,
        repo: Option<&RepoName>,
    ) -> AppResult<ImageCopy> {
        if let Some(remote) = &self.remote {
            // Image routes name no repository: the token's own, once confirmed, must hold it.
            // This comes first, so a token is checked before anything about the image is told.
            let (claimed, _) = Self::confirm_claimed(remote, who, Access::Read).await?;
            return images.member(&claimed, id).await?.ok_or_else(absent);
        }
        let token_repo = match who {
            Identity::Token(grant, _) => RepoName::parse(&grant.repo).ok(),
            _ => None,
        };
        if let Some(repo) = repo.or(token_repo.as_ref()) {
            if let Some(copy) = images.member(repo, id).await? {
                if self.allows(who, repo, Access::Read).await? {
                    return Ok(copy);
                }
            }
        }
        let user = who.username().filter(|u| !u.is_empty());
        if let Some(user) = user {
            let own = ImageCopy::new(id, &Owner::new(user));
            if images.exists(&own).await? {
                // An access token reads its owner's copy through the repositories its scopes
                // open, or while the copy is in no repository yet (mid-push); a password reads
                // it outright.
                let scoped = who.pat_id().is_some();
                if !scoped
                    || images.some_member_repos(&own, 1).await?.0.is_empty()
                    || self.copy_readable(who, images, &own).await?
                {
                    return Ok(own);
                }
            }
        }
        for owner in images.copies(id).await? {
            if user == Some(owner.as_str()) {
                continue; // not stored (looked at above)
            }
            let copy = ImageCopy::new(id, &owner);
            if images.exists(&copy).await? && (who.is_admin() || self.copy_readable(who, images, &copy).await?) {
                return Ok(copy);
            }
        }
        Err(absent())
    }

    /// The copy a write of `id` goes to: the copy the uploader reads, if there is one (the image
    /// exists for them, so it is refused unless it is their own copy being pushed), else their
    /// own copy, new or not. Never a copy they may not read: that one is not there for them.
    pub async fn image_for_write(
        &self,
        who: &Identity,
        images: &Images,
        id: &ImageId,
        uploader: &Uploader,
    ) -> AppResult<ImageCopy> {
        match self.image_for_read(who, images, id, uploader.repo.as_ref()).await {
            Ok(copy) => Ok(copy),
            Err(e) if e.kind == Kind::NotFound => Ok(ImageCopy::new(id, &uploader.owner())),
            Err(e) => Err(e),
        }
    }

    /// Whether `who` reads `copy` through a repository it belongs to. Most images are readable
    /// through the first few; only then is the whole list read (a base image may be in
    /// thousands).
    async fn copy_readable(&self, who: &Identity, images: &Images, copy: &ImageCopy) -> AppResult<bool> {
        let (first, complete) = images.some_member_repos(copy, 16).await?;
        for repo in &first {
            if self.allows(who, repo, Access::Read).await? {
                return Ok(true);
            }
        }
        if !complete {
            for repo in images.member_repos(copy).await? {
                if !first.contains(&repo) && self.allows(who, &repo, Access::Read).await? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Image uploads need an account: a user, or a token with write access.
    pub async fn check_image_write(&self, who: &Identity) -> AppResult<Uploader> {
        if let Some(remote) = &self.remote {
            let (repo, confirmed) = Self::confirm_claimed(remote, who, Access::Write).await?;
            // A foreign index may not say whose token it is; `@repo` can never be a username.
            let name = confirmed.user.unwrap_or_else(|| format!("@{repo}"));
            return Ok(Uploader { name, repo: Some(repo) });
        }
        match who {
            Identity::Anonymous | Identity::Delegated(_) => Err(AppError::unauthorized("Requires authorization")),
            Identity::Token(g, _) if g.access != Access::Write => Err(AppError::unauthorized(format!(
                "Token grants {} access, not write",
                g.access.as_str()
            ))),
            Identity::Token(g, _) => {
                // The token's repository must still take the holder's pushes.
                let repo = RepoName::parse(&g.repo).map_err(|_| AppError::unauthorized("Invalid token"))?;
                self.check(who, &repo, Access::Write).await?;
                Ok(Uploader {
                    name: g.user.clone(),
                    repo: Some(repo),
                })
            }
            Identity::User(p) => Ok(Uploader {
                name: p.name.clone(),
                repo: None,
            }),
            // As the owner, like a password would; the image joins a repository only through a
            // tag or an image list, each checked against the token's scopes.
            Identity::Pat(p, _) if p.may_push_somewhere() => Ok(Uploader {
                name: p.owner.clone(),
                repo: None,
            }),
            Identity::Pat(..) => Err(AppError::forbidden("This access token may not push")),
            Identity::Bearer(..) => Err(AppError::unauthorized("bearer tokens are for the v2 API")),
        }
    }
}
