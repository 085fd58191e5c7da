//! The ACR Tasks endpoints of a registry (`…/registries/{name}/tasks…`, `runs…`, `scheduleRun`,
//! `listBuildSourceUploadUrl`), parsed from the path below the registry, and their one
//! permission table: [`TaskEndpoint::action`], a pure function of the endpoint, authorized on
//! the registry before any store read (ACR checks task and run actions at the registry's scope).

use axum::http::Method;

/// A tasks-plane request below `…/registries/{name}/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEndpoint {
    ListTasks,
    GetTask {
        task: String,
    },
    PutTask {
        task: String,
    },
    PatchTask {
        task: String,
    },
    DeleteTask {
        task: String,
    },
    /// `POST tasks/{task}/listDetails`: the task with its secrets.
    TaskDetails {
        task: String,
    },
    /// `POST scheduleRun`.
    ScheduleRun,
    /// `POST listBuildSourceUploadUrl` (source contexts: not served yet).
    SourceUploadUrl,
    ListRuns,
    GetRun {
        run: String,
    },
    PatchRun {
        run: String,
    },
    CancelRun {
        run: String,
    },
    /// `POST runs/{run}/listLogSasUrl`: a link to the run's log.
    RunLogLink {
        run: String,
    },
    /// A tasks path with a method it does not take.
    MethodNotAllowed {
        method: Method,
    },
}

impl TaskEndpoint {
    /// The endpoint `rest` (the segments after the registry's name) addresses, or `None` when
    /// `rest` is not a tasks path.
    pub fn parse(method: &Method, rest: &[String]) -> Option<TaskEndpoint> {
        use TaskEndpoint as E;
        let lower: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        let m = method.clone();
        let not_allowed = || Some(E::MethodNotAllowed { method: method.clone() });
        let post = m == Method::POST;
        Some(match lower.as_slice() {
            ["tasks"] if m == Method::GET => E::ListTasks,
            ["tasks"] => return not_allowed(),
            ["tasks", _] => {
                let task = rest[1].clone();
                match m {
                    Method::GET => E::GetTask { task },
                    Method::PUT => E::PutTask { task },
                    Method::PATCH => E::PatchTask { task },
                    Method::DELETE => E::DeleteTask { task },
                    _ => return not_allowed(),
                }
            }
            ["tasks", _, "listdetails"] if post => E::TaskDetails { task: rest[1].clone() },
            ["tasks", _, "listdetails"] => return not_allowed(),
            ["schedulerun"] if post => E::ScheduleRun,
            ["listbuildsourceuploadurl"] if post => E::SourceUploadUrl,
            ["schedulerun" | "listbuildsourceuploadurl"] => return not_allowed(),
            ["runs"] if m == Method::GET => E::ListRuns,
            ["runs"] => return not_allowed(),
            ["runs", _] => {
                let run = rest[1].clone();
                match m {
                    Method::GET => E::GetRun { run },
                    Method::PATCH => E::PatchRun { run },
                    _ => return not_allowed(),
                }
            }
            ["runs", _, "cancel"] if post => E::CancelRun { run: rest[1].clone() },
            ["runs", _, "listlogsasurl"] if post => E::RunLogLink { run: rest[1].clone() },
            ["runs", _, "cancel" | "listlogsasurl"] => return not_allowed(),
            _ => return None,
        })
    }

    /// The action the endpoint needs on its registry: the tasks plane's permission table.
    /// `None` only for a method the path does not take (refused after authentication).
    pub fn action(&self) -> Option<&'static str> {
        use TaskEndpoint as E;
        Some(match self {
            E::ListTasks | E::GetTask { .. } => "Microsoft.ContainerRegistry/registries/tasks/read",
            E::PutTask { .. } | E::PatchTask { .. } => "Microsoft.ContainerRegistry/registries/tasks/write",
            E::DeleteTask { .. } => "Microsoft.ContainerRegistry/registries/tasks/delete",
            E::TaskDetails { .. } => "Microsoft.ContainerRegistry/registries/tasks/listDetails/action",
            E::ScheduleRun => "Microsoft.ContainerRegistry/registries/scheduleRun/action",
            E::SourceUploadUrl => "Microsoft.ContainerRegistry/registries/listBuildSourceUploadUrl/action",
            E::ListRuns | E::GetRun { .. } => "Microsoft.ContainerRegistry/registries/runs/read",
            E::PatchRun { .. } => "Microsoft.ContainerRegistry/registries/runs/write",
            E::CancelRun { .. } => "Microsoft.ContainerRegistry/registries/runs/cancel/action",
            E::RunLogLink { .. } => "Microsoft.ContainerRegistry/registries/runs/listLogSasUrl/action",
            E::MethodNotAllowed { .. } => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(m: Method, path: &str) -> Option<TaskEndpoint> {
        let rest: Vec<String> = path.split('/').map(str::to_string).collect();
        TaskEndpoint::parse(&m, &rest)
    }

    /// Every tasks endpoint and the action it needs (a variant added without a row fails the
    /// count; one without an action fails to compile in `action`).
    #[test]
    fn every_tasks_endpoint_has_its_action() {
        let table: &[(Method, &str, Option<&str>)] = &[
            (Method::GET, "tasks", Some("Microsoft.ContainerRegistry/registries/tasks/read")),
            (Method::GET, "tasks/t1", Some("Microsoft.ContainerRegistry/registries/tasks/read")),
            (Method::PUT, "tasks/t1", Some("Microsoft.ContainerRegistry/registries/tasks/write")),
            (Method::PATCH, "Tasks/t1", Some("Microsoft.ContainerRegistry/registries/tasks/write")),
            (Method::DELETE, "tasks/t1", Some("Microsoft.ContainerRegistry/registries/tasks/delete")),
            (
                Method::POST,
                "tasks/t1/listDetails",
                Some("Microsoft.ContainerRegistry/registries/tasks/listDetails/action"),
            ),
            (Method::POST, "scheduleRun", Some("Microsoft.ContainerRegistry/registries/scheduleRun/action")),
            (
                Method::POST,
                "listBuildSourceUploadUrl",
                Some("Microsoft.ContainerRegistry/registries/listBuildSourceUploadUrl/action"),
            ),
            (Method::GET, "runs", Some("Microsoft.ContainerRegistry/registries/runs/read")),
            (Method::GET, "runs/ca1", Some("Microsoft.ContainerRegistry/registries/runs/read")),
            (Method::PATCH, "runs/ca1", Some("Microsoft.ContainerRegistry/registries/runs/write")),
            (Method::POST, "runs/ca1/cancel", Some("Microsoft.ContainerRegistry/registries/runs/cancel/action")),
            (
                Method::POST,
                "runs/ca1/listLogSasUrl",
                Some("Microsoft.ContainerRegistry/registries/runs/listLogSasUrl/action"),
            ),
            (Method::GET, "scheduleRun", None),
        ];
        let mut variants = std::collections::HashSet::new();
        for (m, path, want) in table {
            let ep = p(m.clone(), path).unwrap_or_else(|| panic!("{m} {path} is a tasks path"));
            assert_eq!(ep.action(), *want, "{m} {path}");
            variants.insert(std::mem::discriminant(&ep));
        }
        assert_eq!(variants.len(), 14, "every TaskEndpoint variant appears in the table");
    }

    #[test]
    fn other_paths_are_not_tasks_paths() {
        assert_eq!(p(Method::GET, "webhooks"), None);
        assert_eq!(p(Method::POST, "importImage"), None);
        assert_eq!(p(Method::GET, "tasks/t1/extra/more"), None);
        assert_eq!(p(Method::GET, "runs/ca1"), Some(TaskEndpoint::GetRun { run: "ca1".into() }));
    }
}
