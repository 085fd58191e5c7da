//! Owns ACR's qualification of image names in build tags, `push` lists and `Docker`
//! steps: a name that does not start with a registry gets the run's registry in front
//! (`app:cf1` → `myreg.localhost:5000/app:cf1`). It must never touch a name that already
//! has one, and never qualifies `cmd` images (those are pulled as Docker would).

/// Whether `image` starts with a registry host: its first `/`-separated component
/// contains a `.` or a `:`, or is `localhost` (Docker's rule).
pub fn has_registry(image: &str) -> bool {
    match image.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

/// `image`, with `registry/` in front unless it already names a registry.
pub fn qualify(image: &str, registry: &str) -> String {
    if has_registry(image) || registry.is_empty() {
        image.to_string()
    } else {
        format!("{}/{image}", registry.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: &str = "myreg.localhost:5000";

    #[test]
    fn names_without_a_registry_get_the_runs() {
        assert_eq!(qualify("app:cf1", REG), "myreg.localhost:5000/app:cf1");
        assert_eq!(qualify("hello-world", REG), "myreg.localhost:5000/hello-world");
        assert_eq!(qualify("library/ubuntu:22.04", REG), "myreg.localhost:5000/library/ubuntu:22.04");
        assert_eq!(qualify("team/app@sha256:abc", REG), "myreg.localhost:5000/team/app@sha256:abc");
    }

    #[test]
    fn names_with_a_registry_stay() {
        for image in [
            "myreg.localhost:5000/app:cf1",
            "docker.io/library/busybox",
            "localhost/app",
            "localhost:5000/app:1",
            "mcr.microsoft.com/acr/acr-cli:0.1",
            "host:443/x",
        ] {
            assert_eq!(qualify(image, REG), image);
        }
    }

    #[test]
    fn a_dot_or_colon_after_the_first_slash_does_not_count() {
        assert!(!has_registry("app:1.0"));
        assert!(!has_registry("team/app:1.0"));
        assert!(!has_registry("localhostx/app"));
    }
}
