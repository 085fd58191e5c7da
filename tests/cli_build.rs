//! `wharf acr build` and `wharf acr run` with a local directory, against a server on its
//! defaults and a real buildah/podman engine: the context is packed and uploaded, the image is
//! built from it and pushed, and a `.dockerignore`d file never reaches the server.

mod common;

use common::*;

fn write(root: &std::path::Path, rel: &str, content: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

#[tokio::test]
async fn build_of_a_local_directory_pushes_the_image_without_the_ignored_files() {
    if !require_task_engine() {
        return;
    }
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    cli.run(&["group", "create", "-n", "rg", "-l", "westus"]).ok();
    cli.run(&["acr", "create", "-n", "clibuild", "-g", "rg", "--sku", "Premium"]).ok();
    let base = push_busybox(&s, "clibuild");

    let ctx = tempfile::tempdir().unwrap();
    let root = ctx.path();
    // The build itself proves what arrived: the app file did, the secret and .git did not.
    write(
        root,
        "Dockerfile",
        &format!(
            "FROM {base}\nCOPY . /ctx\nRUN test -e /ctx/app.txt && test ! -e /ctx/secret.txt && test ! -e /ctx/.git && echo context-checked\n"
        ),
    );
    write(root, "app.txt", "app");
    write(root, "secret.txt", "hunter2");
    write(root, ".dockerignore", "# never sent\nsecret.txt\n");
    write(root, ".git/HEAD", "ref: refs/heads/main\n");

    let r = cli.run(&["acr", "build", "-r", "clibuild", "-t", "team/app/web:{{.Run.ID}}", root.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("context-checked"), "the build log streams to stdout: {r:?}");
    for line in [
        "Packing source code into tar to upload...",
        "Excluding '.git' based on default ignore rules",
        "Uploading archived source code from '",
        "Sending context (",
        "Queued a build with ID: ",
        "Waiting for an agent...",
    ] {
        assert!(r.stderr.contains(line), "{line}: {r:?}");
    }
    let run_id = r.stderr.split("Queued a build with ID: ").nth(1).unwrap().lines().next().unwrap().trim().to_string();
    let tags = cli.run(&["acr", "repository", "show-tags", "-n", "clibuild", "--repository", "team/app/web"]).ok();
    assert!(tags.stdout.contains(&run_id), "the image was pushed as team/app/web:{run_id}: {tags:?}");

    // A build whose Dockerfile fails: az's exit status and message.
    write(root, "Dockerfile", &format!("FROM {base}\nRUN echo failing on purpose && exit 3\n"));
    let r = cli.run(&["acr", "build", "-r", "clibuild", "--no-push", root.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("failing on purpose") && r.stderr.contains("Run failed"), "{r:?}");

    // acr run with the same directory: the task file travels inside the archive.
    write(root, "task.yaml", &format!("version: v1.1.0\nsteps:\n  - cmd: {base} cat app.txt\n"));
    let r = cli.run(&["acr", "run", "-r", "clibuild", "-f", "task.yaml", root.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("Queued a run with ID: "), "{r:?}");
}
