//! Comments under a repository. Tree `comments`, key `<repo>\0<id>` with the id 8 bytes
//! big-endian, so a prefix scan of `<repo>\0` lists one repository's comments oldest first and
//! a page after id X starts at `<repo>\0<X+1>`. Ids come from the database's sequence (unique
//! across restarts and repositories). Value: the [`Comment`] as JSON, the body as written
//! (plain text; whoever displays it escapes it).

use super::{decode, encode, Index};
use crate::error::{AppError, AppResult};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Comment {
    pub id: u64,
    pub author: String,
    /// The author account's `uid` (see `User::uid`): an account created later under the same
    /// name is not the author.
    #[serde(default)]
    pub author_uid: String,
    pub body: String,
    pub created: u64,
    #[serde(default)]
    pub edited: Option<u64>,
}

fn key(repo: &str, id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(repo.len() + 9);
    k.extend_from_slice(repo.as_bytes());
    k.push(0);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn prefix(repo: &str) -> Vec<u8> {
    let mut k = repo.as_bytes().to_vec();
    k.push(0);
    k
}

/// One page of a repository's comments.
#[derive(Debug)]
pub struct CommentPage {
    pub comments: Vec<Comment>,
    /// The `after` to ask for the next page with; `None` on the last page.
    pub next: Option<u64>,
    pub total: u64,
}

impl Index {
    pub fn add_comment(&self, repo: &str, author: &str, author_uid: &str, body: &str) -> AppResult<Comment> {
        let comment = Comment {
            // Never 0, so `after=0` means "from the start".
            id: self.db.generate_id()? + 1,
            author: author.to_string(),
            author_uid: author_uid.to_string(),
            body: body.to_string(),
            created: super::now_secs(),
            edited: None,
        };
        self.comments.insert(key(repo, comment.id), encode(&comment)?)?;
        Ok(comment)
    }

    pub fn comment(&self, repo: &str, id: u64) -> AppResult<Option<Comment>> {
        match self.comments.get(key(repo, id))? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    /// Replaces a comment's body (marking it edited); 404 when it is gone.
    pub fn edit_comment(&self, repo: &str, id: u64, body: &str) -> AppResult<Comment> {
        let k = key(repo, id);
        loop {
            let old = self
                .comments
                .get(&k)?
                .ok_or_else(|| AppError::not_found("Comment not found"))?;
            let mut c: Comment = decode(&old)?;
            c.body = body.to_string();
            c.edited = Some(super::now_secs());
            if self
                .comments
                .compare_and_swap(&k, Some(old), Some(encode(&c)?))?
                .is_ok()
            {
                return Ok(c);
            }
        }
    }

    pub fn delete_comment(&self, repo: &str, id: u64) -> AppResult<bool> {
        Ok(self.comments.remove(key(repo, id))?.is_some())
    }

    /// Up to `n` comments with ids above `after` (0: from the first), oldest first.
    pub fn comments_page(&self, repo: &str, after: u64, n: usize) -> AppResult<CommentPage> {
        let p = prefix(repo);
        let start = key(repo, after.saturating_add(1));
        let mut end = p.clone();
        // `<repo>\x01` sorts after every `<repo>\0...` key and before any other repository's.
        end.pop();
        end.push(1);
        let mut comments = Vec::new();
        let mut more = false;
        for entry in self.comments.range(start..end) {
            let (_, v) = entry?;
            if comments.len() == n {
                more = true;
                break;
            }
            comments.push(decode::<Comment>(&v)?);
        }
        let next = if more { comments.last().map(|c| c.id) } else { None };
        Ok(CommentPage {
            comments,
            next,
            total: self.comment_count(repo)?,
        })
    }

    pub fn comment_count(&self, repo: &str) -> AppResult<u64> {
        let mut n = 0;
        for k in self.comments.scan_prefix(prefix(repo)).keys() {
            k?;
            n += 1;
        }
        Ok(n)
    }

    /// Drops every comment of a repository (it is being deleted).
    pub(super) fn forget_repo_comments(&self, repo: &str) -> AppResult<()> {
        for k in self.comments.scan_prefix(prefix(repo)).keys() {
            self.comments.remove(k?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_page_oldest_first_and_stay_in_their_repository() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ix = Index::open(&dir.path().join("v1"), 10_000).expect("open");
        let ids: Vec<u64> = (0..5)
            .map(|i| ix.add_comment("a/b", "alice", "u1", &format!("c{i}")).expect("add").id)
            .collect();
        ix.add_comment("a/bc", "bob", "u2", "elsewhere").expect("add");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        let first = ix.comments_page("a/b", 0, 2).expect("page");
        assert_eq!(first.total, 5);
        assert_eq!(
            first.comments.iter().map(|c| c.body.as_str()).collect::<Vec<_>>(),
            ["c0", "c1"]
        );
        assert_eq!(first.next, Some(ids[1]));
        let last = ix.comments_page("a/b", ids[3], 2).expect("page");
        assert_eq!(last.comments.len(), 1);
        assert_eq!(last.next, None);
        let edited = ix.edit_comment("a/b", ids[0], "changed").expect("edit");
        assert!(edited.edited.is_some());
        assert_eq!(ix.comment("a/b", ids[0]).expect("read").expect("there").body, "changed");
        assert!(
            ix.comment("a/bc", ids[0]).expect("read").is_none(),
            "ids are per repository"
        );
        assert!(ix.delete_comment("a/b", ids[4]).expect("delete"));
        assert!(!ix.delete_comment("a/b", ids[4]).expect("delete twice"));
        ix.forget_repo_comments("a/b").expect("forget");
        assert_eq!(ix.comment_count("a/b").expect("count"), 0);
        assert_eq!(ix.comment_count("a/bc").expect("count"), 1);
    }
}
