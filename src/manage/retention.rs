//! Retention: deletes the tags the `[[retention.policy]]` tables of `registry.toml` do not keep,
//! and the manifests left with no tag, so the next garbage collection frees their blobs. A
//! repository follows the first policy whose pattern matches its name. Under a policy a tag is
//! kept when it matches `protect`, or is among the `keep_newest` most recently pushed of the
//! unprotected tags, or was pulled or pushed within `unpulled_days`; every other tag is deleted.
//! v1 and v2 tags are ranked together, each (name, protocol) one tag.
//!
//! A dry run and a real run decide with the same code on the same inputs (tags, push times,
//! pull statistics, the clock), so a run right after a preview deletes what the preview
//! listed. A tag pushed again between the two is left alone (see `tags::remove`).

use super::tags::{self as mtags, Removed};
use super::Actor;
use crate::config::RetentionPolicy;
use crate::error::{AppError, AppResult};
use crate::manage::pulls::RepoPulls;
use crate::names::RepoName;
use crate::registry::tags::{self, TagRef};
use crate::state::AppState;
use serde::Serialize;

const DAY: u64 = 86_400;

/// One run at a time.
#[derive(Default)]
pub struct RetentionService {
    running: tokio::sync::Mutex<()>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Report {
    pub dry_run: bool,
    pub started: u64,
    /// Repositories a policy applies to and that had something to delete, in name order.
    pub repositories: Vec<RepoReport>,
    pub tags_deleted: usize,
    pub manifests_deleted: usize,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct RepoReport {
    pub repository: String,
    /// The `repositories` pattern of the policy that applied.
    pub policy: String,
    pub tags: Vec<TagRef>,
    pub manifests: Vec<String>,
}

/// `*` any run of characters (`/` too), `?` one character, everything else itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative matching with backtracking to the last `*`: linear in practice, no recursion.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The tags a policy deletes, given each tag's push time and pull statistics and the time now.
pub fn doomed(policy: &RetentionPolicy, tags: &[TagRef], pulls: &RepoPulls, now: u64) -> Vec<TagRef> {
    let protected = |t: &TagRef| policy.protect.iter().any(|p| glob(p, &t.name));
    let mut candidates: Vec<&TagRef> = tags.iter().filter(|t| !protected(t)).collect();
    // Newest first; equal times by name, so the choice never depends on listing order.
    candidates.sort_by(|a, b| {
        b.pushed
            .unwrap_or(0)
            .cmp(&a.pushed.unwrap_or(0))
            .then_with(|| (&a.name, a.protocol).cmp(&(&b.name, b.protocol)))
    });
    let newest = policy.keep_newest.map_or(0, |n| n as usize);
    candidates
        .into_iter()
        .enumerate()
        .filter(|(rank, t)| {
            if *rank < newest {
                return false;
            }
            match policy.unpulled_days {
                Some(days) => {
                    let used = pulls.tag(&t.name).last.max(t.pushed).unwrap_or(0);
                    now.saturating_sub(used) > days.saturating_mul(DAY)
                }
                // keep_newest alone: everything past the newest goes.
                None => true,
            }
        })
        .map(|(_, t)| t.clone())
        .collect()
}

/// Runs retention over every repository in storage (`dry_run`: only reports). Admins only;
/// 409 while another run goes on.
pub async fn run(
    state: &AppState,
    req: Option<&actix_web::HttpRequest>,
    actor: &Actor,
    dry_run: bool,
) -> AppResult<Report> {
    actor.require_admin()?;
    if !state.config.registry {
        return Err(AppError::not_found(
            "This server has no registry storage (registry = false)",
        ));
    }
    let Ok(_one) = state.retention.running.try_lock() else {
        return Err(AppError::conflict("A retention run is going on"));
    };
    let now = crate::clock::now_secs();
    let mut report = Report {
        dry_run,
        started: now,
        repositories: Vec::new(),
        tags_deleted: 0,
        manifests_deleted: 0,
    };
    let policies = &state.config.retention.policies;
    if policies.is_empty() {
        return Ok(report);
    }
    for repo in state.v2_repos.names().await? {
        let Some(policy) = policies.iter().find(|p| glob(&p.repositories, repo.as_str())) else {
            continue;
        };
        let plan = plan(state, &repo, policy, now).await?;
        if plan.tags.is_empty() && plan.manifests.is_empty() {
            continue;
        }
        let done = if dry_run {
            plan
        } else {
            let done = mtags::remove(state, &repo, &plan).await?;
            mtags::audit_removed(state, req, actor, &repo, &done, Some(&policy.repositories));
            mtags::announce_removed(state, req, actor, &repo, &done).await;
            done
        };
        report.tags_deleted += done.tags.len();
        report.manifests_deleted += done.manifests.len();
        report.repositories.push(RepoReport {
            repository: repo.to_string(),
            policy: policy.repositories.clone(),
            tags: done.tags,
            manifests: done.manifests,
        });
    }
    log::info!(
        "retention by {}: {} {} tags and {} manifests in {} repositories",
        actor.name(),
        if dry_run { "would delete" } else { "deleted" },
        report.tags_deleted,
        report.manifests_deleted,
        report.repositories.len()
    );
    Ok(report)
}

/// What the policy deletes in one repository: the doomed tags, and the manifests that then no
/// kept tag reaches (directly or as a child of a kept index), with the children of deleted
/// indexes that nothing kept reaches either.
async fn plan(state: &AppState, repo: &RepoName, policy: &RetentionPolicy, now: u64) -> AppResult<Removed> {
    let all = tags::list(&state.v2_repos, &state.v1_repos, repo).await?;
    let pulls = match &state.index {
        Some(ix) => state.pulls.of(ix, repo.as_str()).await?,
        None => RepoPulls::default(),
    };
    let mut doomed = doomed(policy, &all, &pulls, now);
    doomed.sort_by(|a, b| (&a.name, a.protocol).cmp(&(&b.name, b.protocol)));
    let manifests = mtags::orphaned(state, repo, &all, &doomed).await?;
    Ok(Removed {
        tags: doomed,
        manifests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::PullStat;
    use crate::registry::tags::Protocol;

    fn tag(name: &str, pushed: u64) -> TagRef {
        TagRef {
            name: name.into(),
            protocol: Protocol::V2,
            digest: format!("sha256:{}", "a".repeat(64)),
            pushed: Some(pushed),
        }
    }

    fn names(tags: &[TagRef]) -> Vec<&str> {
        tags.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn globs_match_like_shells_do() {
        assert!(glob("team/*", "team/app"));
        assert!(glob("team/*", "team/a/b"));
        assert!(!glob("team/*", "teams/app"));
        assert!(glob("v*", "v1.2"));
        assert!(glob("v?.0", "v1.0"));
        assert!(!glob("latest", "latest2"));
        assert!(glob("*", ""));
        assert!(glob("*-rc*", "1.0-rc3"));
    }

    #[test]
    fn keep_newest_counts_unprotected_tags_by_push_time() {
        let policy = RetentionPolicy {
            repositories: "*".into(),
            keep_newest: Some(2),
            unpulled_days: None,
            protect: vec!["latest".into(), "v*".into()],
        };
        let tags = vec![
            tag("a", 100),
            tag("b", 300),
            tag("c", 200),
            tag("d", 50),
            tag("latest", 1),
            tag("v1", 2),
        ];
        let gone = doomed(&policy, &tags, &RepoPulls::default(), 1000);
        assert_eq!(names(&gone), vec!["a", "d"]);
    }

    #[test]
    fn unpulled_days_count_from_the_last_pull_or_push() {
        let now = 100 * DAY;
        let policy = RetentionPolicy {
            repositories: "*".into(),
            keep_newest: None,
            unpulled_days: Some(30),
            protect: vec![],
        };
        let mut pulls = RepoPulls::default();
        pulls.tags.insert(
            "pulled".into(),
            PullStat {
                count: 3,
                last: Some(now - 10 * DAY),
            },
        );
        pulls.tags.insert(
            "stale".into(),
            PullStat {
                count: 1,
                last: Some(now - 40 * DAY),
            },
        );
        let tags = vec![
            tag("never", now - 31 * DAY),
            tag("fresh", now - 29 * DAY),
            tag("pulled", now - 90 * DAY),
            tag("stale", now - 90 * DAY),
        ];
        let gone = doomed(&policy, &tags, &pulls, now);
        assert_eq!(names(&gone), vec!["never", "stale"]);
        // Both rules: a tag goes only when neither keeps it.
        let both = RetentionPolicy {
            keep_newest: Some(1),
            ..policy
        };
        assert_eq!(names(&doomed(&both, &tags, &pulls, now)), vec!["never", "stale"]);
        let both = RetentionPolicy {
            keep_newest: Some(3),
            ..both
        };
        assert_eq!(names(&doomed(&both, &tags, &pulls, now)), vec!["stale"]);
    }
}
