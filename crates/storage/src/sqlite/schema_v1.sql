-- Wharf metadata schema, version 1. Times are unix nanoseconds (UTC).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- ARM resources. Ids, types, names and resource groups are compared case-insensitively
-- through their lowercased copies; the originals are returned as created.
CREATE TABLE resources (
    id_lower             TEXT PRIMARY KEY NOT NULL,
    id                   TEXT NOT NULL,
    type                 TEXT NOT NULL,
    type_lower           TEXT NOT NULL,
    name                 TEXT NOT NULL,
    name_lower           TEXT NOT NULL,
    resource_group       TEXT,
    resource_group_lower TEXT,
    key                  TEXT NOT NULL,
    body                 TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX resources_by_name ON resources (type_lower, name_lower);
CREATE INDEX resources_by_group ON resources (resource_group_lower, type_lower);

-- A repository row exists while the repository holds a blob link or a manifest.
-- Times are unix nanoseconds (UTC).
CREATE TABLE repositories (
    id             INTEGER PRIMARY KEY,
    registry       TEXT NOT NULL,
    name           TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    delete_enabled INTEGER NOT NULL DEFAULT 1,
    write_enabled  INTEGER NOT NULL DEFAULT 1,
    read_enabled   INTEGER NOT NULL DEFAULT 1,
    list_enabled   INTEGER NOT NULL DEFAULT 1,
    UNIQUE (registry, name)
);

-- Blobs the blob store holds (deployment-wide, deduplicated).
CREATE TABLE blobs (
    digest      TEXT PRIMARY KEY NOT NULL,
    size        INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Which blobs a repository may see.
CREATE TABLE blob_links (
    repo_id   INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest    TEXT NOT NULL,
    size      INTEGER NOT NULL,
    linked_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest)
) WITHOUT ROWID;
CREATE INDEX blob_links_by_digest ON blob_links (digest);

CREATE TABLE manifests (
    repo_id        INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest         TEXT NOT NULL,
    media_type     TEXT NOT NULL,
    size           INTEGER NOT NULL,
    bytes          BLOB NOT NULL,
    artifact_type  TEXT,
    subject        TEXT,
    annotations    TEXT,
    architecture   TEXT,
    os             TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    delete_enabled INTEGER NOT NULL DEFAULT 1,
    write_enabled  INTEGER NOT NULL DEFAULT 1,
    read_enabled   INTEGER NOT NULL DEFAULT 1,
    list_enabled   INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX manifests_by_digest ON manifests (digest);
CREATE INDEX manifests_by_subject ON manifests (repo_id, subject, digest) WHERE subject IS NOT NULL;
CREATE INDEX manifests_by_time ON manifests (repo_id, updated_at, digest);

-- What each manifest references: validation at put, and roots for blob garbage collection.
CREATE TABLE manifest_blob_refs (
    repo_id         INTEGER NOT NULL,
    manifest_digest TEXT NOT NULL,
    digest          TEXT NOT NULL,
    PRIMARY KEY (repo_id, manifest_digest, digest),
    FOREIGN KEY (repo_id, manifest_digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX manifest_blob_refs_by_digest ON manifest_blob_refs (digest);

CREATE TABLE manifest_child_refs (
    repo_id         INTEGER NOT NULL,
    manifest_digest TEXT NOT NULL,
    child_digest    TEXT NOT NULL,
    PRIMARY KEY (repo_id, manifest_digest, child_digest),
    FOREIGN KEY (repo_id, manifest_digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX manifest_child_refs_by_child ON manifest_child_refs (repo_id, child_digest);

-- A tag always points at a manifest of its repository (the foreign key enforces it).
CREATE TABLE tags (
    repo_id        INTEGER NOT NULL,
    name           TEXT NOT NULL,
    digest         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    delete_enabled INTEGER NOT NULL DEFAULT 1,
    write_enabled  INTEGER NOT NULL DEFAULT 1,
    read_enabled   INTEGER NOT NULL DEFAULT 1,
    list_enabled   INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (repo_id, name),
    FOREIGN KEY (repo_id, digest) REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX tags_by_digest ON tags (repo_id, digest, name);
CREATE INDEX tags_by_time ON tags (repo_id, updated_at, name);

CREATE TABLE uploads (
    id         TEXT PRIMARY KEY NOT NULL,
    registry   TEXT NOT NULL,
    repository TEXT NOT NULL,
    algorithm  TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX uploads_by_registry ON uploads (registry);
