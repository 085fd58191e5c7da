//! Owns the reading of a YAML tree into a [`TaskFile`]: every key checked against the
//! ones ACR documents, every value against its type, `when` against the step ids (and for
//! cycles), each refusal at the line and column of the key or value at fault. It must never
//! accept a key it does not know.

use super::{
    AliasSection, DEFAULT_VERSION, Network, Secret, Step, StepKind, TASK_VERSIONS, TaskFile, Volume, VolumeMount,
};
use crate::error::{Position, Problem, TaskError};
use crate::source_map::{OffsetMap, position};
use crate::yaml::{self, Node, NodeKind};

const TOP_LEVEL_KEYS: &[&str] =
    &["version", "stepTimeout", "workingDirectory", "env", "secrets", "volumes", "alias", "networks", "steps"];
const STEP_KEYS: &[&str] = &[
    "id",
    "build",
    "push",
    "cmd",
    "when",
    "detach",
    "entryPoint",
    "env",
    "ignoreErrors",
    "retries",
    "retryDelay",
    "timeout",
    "workingDirectory",
    "keep",
    "startDelay",
    "disableWorkingDirectoryOverride",
    "isolation",
    "network",
    "privileged",
    "user",
    "pull",
    "repeat",
    "expose",
    "ports",
    "volumeMounts",
    "secret",
    "cache",
    "cpus",
    "exitedWith",
    "exitedWithout",
    "retryOnErrors",
];
const SECRET_KEYS: &[&str] = &["id", "keyvault", "clientID"];
const VOLUME_KEYS: &[&str] = &["name", "secret"];
const MOUNT_KEYS: &[&str] = &["name", "mountPath"];
const NETWORK_KEYS: &[&str] = &["name", "driver", "ipv6", "skipCreation", "isDefault"];
const ALIAS_KEYS: &[&str] = &["src", "values", "directive"];

/// Parses `text` (a rewrite of `original` whose offsets `map` leads back) into a tree.
pub(crate) fn parse_tree(text: &str, map: &OffsetMap, original: &str) -> Result<Option<Node>, TaskError> {
    yaml::parse(text)
        .map_err(|e| TaskError::TaskFile { at: position(original, map.map(e.at)), problem: Problem::Syntax(e.message) })
}

/// Turns a node's offset into a position of the file as written.
pub(crate) type Locate<'a> = &'a dyn Fn(usize) -> Position;

struct Reader<'a> {
    locate: Locate<'a>,
}

type Entries<'n> = Vec<(&'n str, &'n Node, &'n Node)>;

impl Reader<'_> {
    fn err(&self, at: usize, problem: Problem) -> TaskError {
        TaskError::TaskFile { at: (self.locate)(at), problem }
    }

    fn err_at(&self, at: Position, problem: Problem) -> TaskError {
        TaskError::TaskFile { at, problem }
    }

    fn bad_type(&self, key: &str, expected: &'static str, node: &Node) -> TaskError {
        self.err(node.at, Problem::BadType { key: key.to_string(), expected, found: node.describe() })
    }

    /// The entries of a mapping, keys checked against `allowed`.
    fn entries<'n>(
        &self,
        key: &str,
        node: &'n Node,
        allowed: &[&str],
        context: &'static str,
    ) -> Result<Entries<'n>, TaskError> {
        let NodeKind::Map(pairs) = &node.kind else {
            return Err(self.bad_type(key, "a mapping", node));
        };
        let mut out: Entries<'n> = Vec::new();
        for (k, v) in pairs {
            let NodeKind::Scalar { text, .. } = &k.kind else {
                return Err(self.err(k.at, Problem::Syntax("a key must be a plain string".to_string())));
            };
            if !allowed.contains(&text.as_str()) {
                return Err(
                    self.err(k.at, Problem::UnknownKey { context, key: text.clone(), expected: allowed.join(", ") })
                );
            }
            if out.iter().any(|(seen, _, _)| seen == text) {
                return Err(self.err(k.at, Problem::DuplicateKey(text.clone())));
            }
            out.push((text.as_str(), k, v));
        }
        Ok(out)
    }

    fn string(&self, key: &str, node: &Node) -> Result<Option<String>, TaskError> {
        match &node.kind {
            _ if node.is_null() => Ok(None),
            NodeKind::Scalar { text, .. } => Ok(Some(text.clone())),
            _ => Err(self.bad_type(key, "a string", node)),
        }
    }

    fn required_string(
        &self,
        key: &'static str,
        node: Option<&Node>,
        context: &'static str,
        at: usize,
    ) -> Result<String, TaskError> {
        match node.map(|n| self.string(key, n)).transpose()?.flatten() {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(self.err(node.map_or(at, |n| n.at), Problem::MissingKey { key, context })),
        }
    }

    fn bool(&self, key: &str, node: &Node) -> Result<bool, TaskError> {
        match &node.kind {
            _ if node.is_null() => Ok(false),
            NodeKind::Scalar { text, quoted: false } => match text.as_str() {
                "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Ok(true),
                "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Ok(false),
                _ => Err(self.bad_type(key, "true or false", node)),
            },
            _ => Err(self.bad_type(key, "true or false", node)),
        }
    }

    fn int(&self, key: &str, node: &Node) -> Result<Option<i64>, TaskError> {
        match &node.kind {
            _ if node.is_null() => Ok(None),
            NodeKind::Scalar { text, quoted: false } => {
                text.parse::<i64>().map(Some).map_err(|_| self.bad_type(key, "an integer", node))
            }
            _ => Err(self.bad_type(key, "an integer", node)),
        }
    }

    fn uint(&self, key: &str, node: &Node) -> Result<Option<u64>, TaskError> {
        match self.int(key, node)? {
            Some(n) if n < 0 => Err(self.err(node.at, Problem::Negative(key.to_string()))),
            n => Ok(n.map(|n| n as u64)),
        }
    }

    fn u32(&self, key: &str, node: &Node) -> Result<u32, TaskError> {
        let n = self.uint(key, node)?.unwrap_or(0);
        u32::try_from(n).map_err(|_| self.bad_type(key, "a smaller integer", node))
    }

    fn list<'n>(&self, key: &str, node: &'n Node) -> Result<&'n [Node], TaskError> {
        match &node.kind {
            _ if node.is_null() => Ok(&[]),
            NodeKind::Seq(items) => Ok(items),
            _ => Err(self.bad_type(key, "a list", node)),
        }
    }

    fn strings(&self, key: &str, node: &Node) -> Result<Vec<(String, usize)>, TaskError> {
        self.list(key, node)?
            .iter()
            .map(|item| match &item.kind {
                NodeKind::Scalar { text, .. } if !item.is_null() => Ok((text.clone(), item.at)),
                _ => Err(self.bad_type(key, "a list of strings", item)),
            })
            .collect()
    }

    fn ints(&self, key: &str, node: &Node) -> Result<Vec<i64>, TaskError> {
        self.list(key, node)?
            .iter()
            .map(|item| self.int(key, item)?.ok_or_else(|| self.bad_type(key, "a list of integers", item)))
            .collect()
    }

    fn env(&self, key: &str, node: &Node) -> Result<Vec<(String, String)>, TaskError> {
        self.strings(key, node)?
            .into_iter()
            .map(|(entry, at)| match entry.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                _ => Err(self.err(at, Problem::BadEnv(entry))),
            })
            .collect()
    }
}

impl TaskFile {
    /// Reads a tree (`None`: an empty file); `locate` turns offsets into positions.
    pub(crate) fn from_tree(root: Option<&Node>, locate: Locate<'_>) -> Result<TaskFile, TaskError> {
        let r = Reader { locate };
        let root = match root {
            Some(root) if !root.is_null() => root,
            _ => return Err(r.err(0, Problem::Empty)),
        };
        let mut file = TaskFile {
            version: DEFAULT_VERSION.to_string(),
            step_timeout: None,
            working_directory: None,
            env: Vec::new(),
            secrets: Vec::new(),
            volumes: Vec::new(),
            alias: None,
            networks: Vec::new(),
            steps: Vec::new(),
        };
        let mut steps_node = None;
        for (key, k, v) in r.entries("the task file", root, TOP_LEVEL_KEYS, "top-level")? {
            match key {
                "version" => {
                    if let Some(version) = r.string(key, v)? {
                        if !TASK_VERSIONS.iter().any(|t| t.eq_ignore_ascii_case(&version)) {
                            return Err(r.err(v.at, Problem::BadVersion(version)));
                        }
                        file.version = version;
                    }
                }
                "stepTimeout" => file.step_timeout = r.uint(key, v)?,
                "workingDirectory" => file.working_directory = r.string(key, v)?,
                "env" => file.env = r.env(key, v)?,
                "secrets" => file.secrets = read_secrets(&r, v)?,
                "volumes" => file.volumes = read_volumes(&r, v)?,
                "alias" => file.alias = read_alias(&r, k, v)?,
                "networks" => file.networks = read_networks(&r, v)?,
                "steps" => steps_node = Some((k, v)),
                _ => unreachable!("checked against TOP_LEVEL_KEYS"),
            }
        }
        let Some((steps_key, steps_node)) = steps_node else {
            return Err(r.err(root.at, Problem::NoSteps));
        };
        let items = r.list("steps", steps_node)?;
        if items.is_empty() {
            return Err(r.err(steps_key.at, Problem::NoSteps));
        }
        for item in items {
            file.steps.push(read_step(&r, item, &file.volumes)?);
        }
        check_graph(&r, &file, items)?;
        Ok(file)
    }
}

/// What aliases need before the whole file is read: the version, the `alias` section and
/// the character range it spans (so expansion leaves it alone).
pub(crate) struct Header {
    pub version: String,
    pub alias: Option<AliasSection>,
    pub alias_range: Option<std::ops::Range<usize>>,
}

/// Reads only `version` and `alias` of a tree whose text is `text_chars` characters long.
pub(crate) fn read_header(root: Option<&Node>, locate: Locate<'_>, text_chars: usize) -> Result<Header, TaskError> {
    let r = Reader { locate };
    let mut header = Header { version: DEFAULT_VERSION.to_string(), alias: None, alias_range: None };
    let Some(NodeKind::Map(pairs)) = root.map(|n| &n.kind) else { return Ok(header) };
    for (i, (k, v)) in pairs.iter().enumerate() {
        let NodeKind::Scalar { text: key, .. } = &k.kind else { continue };
        match key.as_str() {
            "version" => header.version = r.string(key, v)?.unwrap_or_else(|| DEFAULT_VERSION.to_string()),
            "alias" => {
                header.alias = read_alias(&r, k, v)?;
                let end = pairs.get(i + 1).map_or(text_chars, |(next, _)| next.at);
                header.alias_range = Some(k.at..end);
            }
            _ => {}
        }
    }
    Ok(header)
}

fn read_step(r: &Reader<'_>, node: &Node, volumes: &[Volume]) -> Result<Step, TaskError> {
    let entries = r.entries("a step", node, STEP_KEYS, "step")?;
    let mut step = Step {
        at: (r.locate)(node.at),
        id: None,
        kind: StepKind::Cmd(String::new()),
        kind_at: (r.locate)(node.at),
        when: Vec::new(),
        when_at: Vec::new(),
        detach: false,
        entry_point: None,
        env: Vec::new(),
        ignore_errors: false,
        retries: 0,
        retry_delay: None,
        timeout: None,
        working_directory: None,
        keep: false,
        start_delay: 0,
        disable_working_directory_override: false,
        isolation: None,
        network: None,
        privileged: false,
        user: None,
        pull: false,
        repeat: 0,
        expose: Vec::new(),
        ports: Vec::new(),
        volume_mounts: Vec::new(),
        secret: None,
        cache: None,
        cpus: None,
        exited_with: Vec::new(),
        exited_without: Vec::new(),
        retry_on_errors: Vec::new(),
    };
    let mut kinds: Vec<(&str, StepKind, usize)> = Vec::new();
    for (key, _, v) in entries {
        match key {
            "id" => {
                let id = r.string(key, v)?;
                if let Some(id) = &id
                    && id.chars().any(char::is_whitespace)
                {
                    return Err(r.err(v.at, Problem::StepIdSpace(id.clone())));
                }
                step.id = id.filter(|id| !id.is_empty());
            }
            "build" => {
                if let Some(s) = r.string(key, v)?.filter(|s| !s.trim().is_empty()) {
                    kinds.push((key, StepKind::Build(s), v.at));
                }
            }
            "cmd" => {
                if let Some(s) = r.string(key, v)?.filter(|s| !s.trim().is_empty()) {
                    kinds.push((key, StepKind::Cmd(s), v.at));
                }
            }
            "push" => {
                let images: Vec<String> = r.strings(key, v)?.into_iter().map(|(s, _)| s).collect();
                if !images.is_empty() {
                    kinds.push((key, StepKind::Push(images), v.at));
                }
            }
            "when" => {
                let when = r.strings(key, v)?;
                if when.len() > 1 && when.iter().any(|(w, _)| w == "-") {
                    return Err(r.err(v.at, Problem::WhenDashWithOthers));
                }
                step.when_at = when.iter().map(|(_, at)| (r.locate)(*at)).collect();
                step.when = when.into_iter().map(|(w, _)| w).collect();
            }
            "detach" => step.detach = r.bool(key, v)?,
            "entryPoint" => step.entry_point = r.string(key, v)?,
            "env" => step.env = r.env(key, v)?,
            "ignoreErrors" => step.ignore_errors = r.bool(key, v)?,
            "retries" => step.retries = r.u32(key, v)?,
            "retryDelay" => step.retry_delay = r.uint(key, v)?,
            "timeout" => step.timeout = r.uint(key, v)?,
            "workingDirectory" => step.working_directory = r.string(key, v)?,
            "keep" => step.keep = r.bool(key, v)?,
            "startDelay" => step.start_delay = r.uint(key, v)?.unwrap_or(0),
            "disableWorkingDirectoryOverride" => step.disable_working_directory_override = r.bool(key, v)?,
            "isolation" => step.isolation = r.string(key, v)?,
            "network" => step.network = r.string(key, v)?,
            "privileged" => step.privileged = r.bool(key, v)?,
            "user" => step.user = r.string(key, v)?,
            "pull" => step.pull = r.bool(key, v)?,
            "repeat" => step.repeat = r.u32(key, v)?,
            "expose" => step.expose = r.strings(key, v)?.into_iter().map(|(s, _)| s).collect(),
            "ports" => step.ports = r.strings(key, v)?.into_iter().map(|(s, _)| s).collect(),
            "volumeMounts" => step.volume_mounts = read_mounts(r, v, volumes)?,
            "secret" => step.secret = Some(to_json(v)),
            "cache" => step.cache = r.string(key, v)?,
            "cpus" => step.cpus = r.string(key, v)?,
            "exitedWith" => step.exited_with = r.ints(key, v)?,
            "exitedWithout" => step.exited_without = r.ints(key, v)?,
            "retryOnErrors" => step.retry_on_errors = r.strings(key, v)?.into_iter().map(|(s, _)| s).collect(),
            _ => unreachable!("checked against STEP_KEYS"),
        }
    }
    match kinds.len() {
        1 => {
            let (_, kind, at) = kinds.remove(0);
            step.kind = kind;
            step.kind_at = (r.locate)(at);
        }
        0 => return Err(r.err(node.at, Problem::StepKind("none".to_string()))),
        _ => {
            let names: Vec<&str> = kinds.iter().map(|(k, _, _)| *k).collect();
            return Err(r.err(kinds[1].2, Problem::StepKind(names.join(" and "))));
        }
    }
    if !step.volume_mounts.is_empty() && !matches!(step.kind, StepKind::Cmd(_)) {
        return Err(r.err(node.at, Problem::MountsOnNonCmd));
    }
    Ok(step)
}

/// Unique ids; `when` names existing steps, not itself; no cycles.
fn check_graph(r: &Reader<'_>, file: &TaskFile, items: &[Node]) -> Result<(), TaskError> {
    let ids = file.step_ids();
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            let at = id_node(&items[i]).unwrap_or(&items[i]).at;
            return Err(r.err(at, Problem::DuplicateStepId(id.clone())));
        }
    }
    for (i, step) in file.steps.iter().enumerate() {
        for (j, dep) in step.when.iter().enumerate() {
            if dep == "-" {
                continue;
            }
            if *dep == ids[i] {
                return Err(r.err_at(step.when_at[j], Problem::SelfDependency(dep.clone())));
            }
            if !ids.contains(dep) {
                return Err(r.err_at(step.when_at[j], Problem::UnknownWhen(dep.clone())));
            }
        }
    }
    // Depth-first search for a cycle; report it at the `when` entry that closes it.
    let deps = file.dependencies();
    let mut state = vec![0u8; ids.len()]; // 0 new, 1 on the stack, 2 done
    let mut stack: Vec<usize> = Vec::new();
    fn visit(
        u: usize,
        deps: &[Vec<usize>],
        state: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<(usize, usize, Vec<usize>)> {
        state[u] = 1;
        stack.push(u);
        for &v in &deps[u] {
            if state[v] == 1 {
                let from = stack.iter().position(|&s| s == v).unwrap_or(0);
                return Some((u, v, stack[from..].to_vec()));
            }
            if state[v] == 0
                && let Some(found) = visit(v, deps, state, stack)
            {
                return Some(found);
            }
        }
        stack.pop();
        state[u] = 2;
        None
    }
    for start in 0..ids.len() {
        if state[start] != 0 {
            continue;
        }
        if let Some((u, v, cycle)) = visit(start, &deps, &mut state, &mut stack) {
            // The path runs against the edges (each waits for the next); show it as "waits for".
            let mut names: Vec<String> = cycle.iter().map(|&s| ids[s].clone()).collect();
            names.push(ids[v].clone());
            let step = &file.steps[u];
            let at = step.when.iter().position(|w| *w == ids[v]).map_or(step.at, |j| step.when_at[j]);
            return Err(r.err_at(at, Problem::Cycle(names)));
        }
    }
    Ok(())
}

fn id_node(step: &Node) -> Option<&Node> {
    let NodeKind::Map(pairs) = &step.kind else { return None };
    pairs.iter().find(|(k, _)| matches!(&k.kind, NodeKind::Scalar { text, .. } if text == "id")).map(|(_, v)| v)
}

fn read_secrets(r: &Reader<'_>, node: &Node) -> Result<Vec<Secret>, TaskError> {
    let mut secrets: Vec<Secret> = Vec::new();
    for item in r.list("secrets", node)? {
        let entries = r.entries("a secret", item, SECRET_KEYS, "secret")?;
        let get = |name: &str| entries.iter().find(|(k, _, _)| *k == name).map(|(_, _, v)| *v);
        let id = r.required_string("id", get("id"), "a secret", item.at)?;
        if secrets.iter().any(|s| s.id == id) {
            return Err(r.err(item.at, Problem::DuplicateSecret(id)));
        }
        let keyvault = get("keyvault").map(|v| r.string("keyvault", v)).transpose()?.flatten();
        let client_id = get("clientID").map(|v| r.string("clientID", v)).transpose()?.flatten();
        secrets.push(Secret { id, keyvault, client_id, at: (r.locate)(item.at) });
    }
    Ok(secrets)
}

fn read_volumes(r: &Reader<'_>, node: &Node) -> Result<Vec<Volume>, TaskError> {
    use base64::Engine as _;
    let mut volumes: Vec<Volume> = Vec::new();
    for item in r.list("volumes", node)? {
        let entries = r.entries("a volume", item, VOLUME_KEYS, "volume")?;
        let get = |name: &str| entries.iter().find(|(k, _, _)| *k == name).map(|(_, _, v)| *v);
        let name = r.required_string("name", get("name"), "a volume", item.at)?;
        if volumes.iter().any(|v| v.name == name) {
            return Err(r.err(item.at, Problem::DuplicateVolume(name)));
        }
        let mut secret = Vec::new();
        if let Some(map) = get("secret").filter(|n| !n.is_null()) {
            let NodeKind::Map(pairs) = &map.kind else {
                return Err(r.bad_type("secret", "a mapping of file names to base64 values", map));
            };
            for (k, v) in pairs {
                let key = r.string("secret", k)?.unwrap_or_default();
                let encoded = r.string(&key, v)?.unwrap_or_default();
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|_| r.err(v.at, Problem::BadBase64 { volume: name.clone(), key: key.clone() }))?;
                secret.push((key, decoded));
            }
        }
        volumes.push(Volume { name, secret, at: (r.locate)(item.at) });
    }
    Ok(volumes)
}

fn read_mounts(r: &Reader<'_>, node: &Node, volumes: &[Volume]) -> Result<Vec<VolumeMount>, TaskError> {
    let mut mounts: Vec<VolumeMount> = Vec::new();
    for item in r.list("volumeMounts", node)? {
        let entries = r.entries("a volume mount", item, MOUNT_KEYS, "volume mount")?;
        let get = |name: &str| entries.iter().find(|(k, _, _)| *k == name).map(|(_, _, v)| *v);
        let name = r.required_string("name", get("name"), "a volume mount", item.at)?;
        let mount_path = r.required_string("mountPath", get("mountPath"), "a volume mount", item.at)?;
        if !volumes.iter().any(|v| v.name == name) {
            return Err(r.err(get("name").map_or(item.at, |n| n.at), Problem::UnknownVolume(name)));
        }
        if mounts.iter().any(|m| m.mount_path == mount_path) {
            return Err(r.err(item.at, Problem::DuplicateMountPath(mount_path)));
        }
        mounts.push(VolumeMount { name, mount_path });
    }
    Ok(mounts)
}

fn read_networks(r: &Reader<'_>, node: &Node) -> Result<Vec<Network>, TaskError> {
    let mut networks = Vec::new();
    for item in r.list("networks", node)? {
        let entries = r.entries("a network", item, NETWORK_KEYS, "network")?;
        let get = |name: &str| entries.iter().find(|(k, _, _)| *k == name).map(|(_, _, v)| *v);
        let flag = |name: &str| get(name).map(|v| r.bool(name, v)).transpose().map(Option::unwrap_or_default);
        networks.push(Network {
            name: r.required_string("name", get("name"), "a network", item.at)?,
            driver: get("driver").map(|v| r.string("driver", v)).transpose()?.flatten(),
            ipv6: flag("ipv6")?,
            skip_creation: flag("skipCreation")?,
            is_default: flag("isDefault")?,
        });
    }
    Ok(networks)
}

fn read_alias(r: &Reader<'_>, key: &Node, node: &Node) -> Result<Option<AliasSection>, TaskError> {
    if node.is_null() {
        return Ok(None);
    }
    let entries = r.entries("alias", node, ALIAS_KEYS, "alias")?;
    let mut alias = AliasSection { src: Vec::new(), values: Vec::new(), directive: None, at: (r.locate)(key.at) };
    for (k, _, v) in entries {
        match k {
            "src" => alias.src = r.strings(k, v)?.into_iter().map(|(s, _)| s).collect(),
            "directive" => {
                if let Some(d) = r.string(k, v)? {
                    let mut chars = d.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) if !c.is_alphanumeric() && !c.is_whitespace() => alias.directive = Some(c),
                        _ => return Err(r.err(v.at, Problem::BadAliasDirective(d))),
                    }
                }
            }
            "values" => {
                if v.is_null() {
                    continue;
                }
                let NodeKind::Map(pairs) = &v.kind else {
                    return Err(r.bad_type("values", "a mapping of alias names to values", v));
                };
                for (name_node, value) in pairs {
                    let name = r.string("values", name_node)?.unwrap_or_default();
                    if !crate::alias::is_alias_name(&name) {
                        return Err(r.err(name_node.at, Problem::BadAliasName(name)));
                    }
                    if alias.values.iter().any(|(n, _)| *n == name) {
                        return Err(r.err(name_node.at, Problem::DuplicateKey(name)));
                    }
                    let value = r.string(&name, value)?.unwrap_or_default();
                    alias.values.push((name, value));
                }
            }
            _ => unreachable!("checked against ALIAS_KEYS"),
        }
    }
    Ok(Some(alias))
}

/// A node as JSON (scalars stay strings, except plain true/false, null and integers).
fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match &node.kind {
        _ if node.is_null() => Value::Null,
        NodeKind::Scalar { text, quoted: false } if text == "true" => Value::Bool(true),
        NodeKind::Scalar { text, quoted: false } if text == "false" => Value::Bool(false),
        NodeKind::Scalar { text, quoted: false } if text.parse::<i64>().is_ok() => {
            Value::from(text.parse::<i64>().unwrap_or_default())
        }
        NodeKind::Scalar { text, .. } => Value::String(text.clone()),
        NodeKind::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        NodeKind::Map(pairs) => Value::Object(
            pairs
                .iter()
                .map(|(k, v)| {
                    let key = match &k.kind {
                        NodeKind::Scalar { text, .. } => text.clone(),
                        _ => String::new(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
    }
}
