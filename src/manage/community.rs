//! Stars and comments on repositories. Both need an account that may read the repository (to
//! anyone else it is absent, 404). Comments are plain text, trimmed, 1 to [`MAX_COMMENT`]
//! characters, stored and returned as written: escaping is the job of whatever displays them.
//! Their author may edit them; the author, whoever manages the repository, and admins may
//! delete them. An account may post `limits.comments_per_minute` of them a minute.

use super::browse::readable;
use super::{Actor, Viewer};
use crate::error::{AppError, AppResult, Kind};
use crate::index::{Access, Comment};
use crate::state::AppState;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest comment, in characters.
pub const MAX_COMMENT: usize = 2000;
pub const DEFAULT_COMMENTS_PAGE: usize = 50;
pub const MAX_COMMENTS_PAGE: usize = 100;
const WINDOW: Duration = Duration::from_secs(60);
/// Accounts tracked at most before the expired ones are dropped.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Serialize)]
pub struct StarState {
    pub stars: u64,
    pub starred: bool,
}

#[derive(Debug, Serialize)]
pub struct CommentView {
    pub id: u64,
    pub author: String,
    pub body: String,
    pub created: u64,
    pub edited: Option<u64>,
    pub can_edit: bool,
    pub can_delete: bool,
}

#[derive(Debug, Serialize)]
pub struct CommentList {
    pub comments: Vec<CommentView>,
    pub next: Option<u64>,
    pub total: u64,
}

/// The account acting, or 403: stars and comments belong to accounts (the operator on the
/// local socket has none).
fn account(actor: &Actor) -> AppResult<&crate::auth::Principal> {
    match actor {
        Actor::User(p) => Ok(p),
        _ => Err(AppError::forbidden(
            "Stars and comments belong to accounts: sign in as one",
        )),
    }
}

/// `PUT`/`DELETE .../-/star`: stars (`on`) or unstars the repository; idempotent.
pub async fn star(state: &AppState, actor: &Actor, name: &str, on: bool) -> AppResult<StarState> {
    let user = account(actor)?.name.clone();
    let (repo, _) = readable(state, &Viewer::Actor(actor.clone()), name).await?;
    let ix = super::repos::index(state)?;
    let name = repo.to_string();
    ix.write(move |ix| {
        ix.set_star(&name, &user, on)?;
        Ok(StarState {
            stars: ix.star_count(&name)?,
            starred: ix.starred(&name, &user)?,
        })
    })
    .await
}

/// Per-account sliding window of comment posts.
pub struct CommentLimiter {
    per_minute: usize,
    recent: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl CommentLimiter {
    pub fn new(per_minute: u32) -> CommentLimiter {
        CommentLimiter {
            per_minute: per_minute as usize,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a post by `user`, or refuses it (429 with the seconds until one is allowed).
    fn take(&self, user: &str) -> AppResult<()> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut recent = self
            .recent
            .lock()
            .map_err(|_| AppError::internal("comment limiter lock poisoned"))?;
        if recent.len() >= MAX_TRACKED {
            recent.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        let times = recent.entry(user.to_string()).or_default();
        while times.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            times.pop_front();
        }
        if times.len() >= self.per_minute {
            let oldest = times.front().copied().unwrap_or(now);
            let wait = WINDOW.saturating_sub(now.duration_since(oldest));
            return Err(AppError::new(
                Kind::TooManyRequests,
                format!("At most {} comments a minute: try again shortly", self.per_minute),
            )
            .retry_after(wait.as_secs_f64().ceil().max(1.0) as u64));
        }
        times.push_back(now);
        Ok(())
    }
}

/// A comment body as stored: trimmed, 1 to [`MAX_COMMENT`] characters, plain text (line
/// breaks and tabs, no other control characters).
fn clean(body: &str) -> AppResult<String> {
    let body = body.trim();
    let chars = body.chars().count();
    if chars == 0 {
        return Err(AppError::bad_request("A comment cannot be empty"));
    }
    if chars > MAX_COMMENT {
        return Err(AppError::bad_request(format!(
            "A comment has at most {MAX_COMMENT} characters, not {chars}"
        )));
    }
    if body.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(AppError::bad_request("A comment is plain text: no control characters"));
    }
    Ok(body.to_string())
}

/// Who is looking at comments, and what they may do with them.
struct Reader {
    name: Option<String>,
    /// The account's `uid`, to tell it from an earlier account of the same name.
    uid: String,
    /// May delete any comment (manages the repository, or is an admin).
    moderates: bool,
}

impl Reader {
    async fn of(state: &AppState, viewer: &Viewer, repo: &crate::names::RepoName) -> AppResult<Reader> {
        let name = viewer.username().map(str::to_string);
        let uid = match &name {
            Some(n) => {
                let n = n.clone();
                let ix = super::repos::index(state)?;
                ix.run(move |ix| ix.user(&n)).await?.map(|u| u.uid).unwrap_or_default()
            }
            None => String::new(),
        };
        let moderates = match viewer {
            Viewer::Anonymous => false,
            Viewer::Actor(a) => a.is_admin() || a.may(state, repo, Access::Delete).await?,
        };
        Ok(Reader { name, uid, moderates })
    }

    fn wrote(&self, c: &Comment) -> bool {
        self.name.as_deref() == Some(c.author.as_str()) && (c.author_uid.is_empty() || c.author_uid == self.uid)
    }

    fn view(&self, c: Comment) -> CommentView {
        let can_edit = self.wrote(&c);
        CommentView {
            can_delete: can_edit || self.moderates,
            can_edit,
            id: c.id,
            author: c.author,
            body: c.body,
            created: c.created,
            edited: c.edited,
        }
    }
}

fn parse_id(raw: &str) -> AppResult<u64> {
    raw.parse::<u64>().map_err(|_| AppError::not_found("Comment not found"))
}

/// `GET .../-/comments?n=&after=`: oldest first.
pub async fn list(
    state: &AppState,
    viewer: &Viewer,
    name: &str,
    n: Option<&str>,
    after: Option<&str>,
) -> AppResult<CommentList> {
    let n = super::browse::number(n, "n", DEFAULT_COMMENTS_PAGE, MAX_COMMENTS_PAGE)?;
    let after = match after {
        None | Some("") => 0,
        Some(raw) => raw
            .parse::<u64>()
            .map_err(|_| AppError::bad_request(format!("after must be a comment id, not {raw:?}")))?,
    };
    let (repo, _) = readable(state, viewer, name).await?;
    let reader = Reader::of(state, viewer, &repo).await?;
    let key = repo.to_string();
    let page = super::repos::index(state)?
        .run(move |ix| ix.comments_page(&key, after, n))
        .await?;
    Ok(CommentList {
        comments: page.comments.into_iter().map(|c| reader.view(c)).collect(),
        next: page.next,
        total: page.total,
    })
}

/// `POST .../-/comments`.
pub async fn add(state: &AppState, actor: &Actor, name: &str, body: &str) -> AppResult<CommentView> {
    let user = account(actor)?.name.clone();
    let body = clean(body)?;
    let viewer = Viewer::Actor(actor.clone());
    let (repo, _) = readable(state, &viewer, name).await?;
    let reader = Reader::of(state, &viewer, &repo).await?;
    state.comment_limits.take(&user)?;
    let (key, uid) = (repo.to_string(), reader.uid.clone());
    let comment = super::repos::index(state)?
        .write(move |ix| ix.add_comment(&key, &user, &uid, &body))
        .await?;
    Ok(reader.view(comment))
}

/// A comment of a repository the actor may read, with what they may do with it.
async fn existing(state: &AppState, actor: &Actor, name: &str, id: &str) -> AppResult<(String, Comment, Reader)> {
    let id = parse_id(id)?;
    let viewer = Viewer::Actor(actor.clone());
    let (repo, _) = readable(state, &viewer, name).await?;
    let reader = Reader::of(state, &viewer, &repo).await?;
    let key = repo.to_string();
    let comment = super::repos::index(state)?
        .run(move |ix| ix.comment(&key, id))
        .await?
        .ok_or_else(|| AppError::not_found("Comment not found"))?;
    Ok((repo.to_string(), comment, reader))
}

/// `PUT .../-/comments/ID`: its author only.
pub async fn edit(state: &AppState, actor: &Actor, name: &str, id: &str, body: &str) -> AppResult<CommentView> {
    let body = clean(body)?;
    let (repo, comment, reader) = existing(state, actor, name, id).await?;
    if !reader.wrote(&comment) {
        return Err(AppError::forbidden("Only its author may edit a comment"));
    }
    let edited = super::repos::index(state)?
        .write(move |ix| ix.edit_comment(&repo, comment.id, &body))
        .await?;
    Ok(reader.view(edited))
}

/// `DELETE .../-/comments/ID`: its author, whoever manages the repository, or an admin.
pub async fn delete(state: &AppState, actor: &Actor, name: &str, id: &str) -> AppResult<Comment> {
    let (repo, comment, reader) = existing(state, actor, name, id).await?;
    if !reader.wrote(&comment) && !reader.moderates {
        return Err(AppError::forbidden(
            "Only its author, the repository's owner or an administrator may delete a comment",
        ));
    }
    let id = comment.id;
    let removed = super::repos::index(state)?
        .write(move |ix| ix.delete_comment(&repo, id))
        .await?;
    if !removed {
        return Err(AppError::not_found("Comment not found"));
    }
    Ok(comment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_trimmed_plain_text_of_bounded_length() {
        assert_eq!(clean("  hi\nthere \t").expect("ok"), "hi\nthere");
        assert!(clean("   \n").is_err());
        assert!(clean(&"é".repeat(MAX_COMMENT)).is_ok(), "characters, not bytes");
        assert!(clean(&"a".repeat(MAX_COMMENT + 1)).is_err());
        assert!(clean("a\u{0}b").is_err());
        assert_eq!(clean("<script>x</script>").expect("kept"), "<script>x</script>");
    }

    #[test]
    fn the_limiter_allows_a_burst_then_says_when() {
        let l = CommentLimiter::new(2);
        l.take("a").expect("1");
        l.take("a").expect("2");
        let e = l.take("a").expect_err("3rd");
        assert_eq!(e.status().as_u16(), 429);
        assert!(matches!(e.retry_after_secs(), Some(1..=60)));
        l.take("b").expect("others are not limited");
        CommentLimiter::new(0).take("a").expect("0 = no limit");
    }
}
