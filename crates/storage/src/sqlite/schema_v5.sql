-- Wharf metadata schema, version 5: the images each task's last run built on and pushed, for
-- base-image triggers. Times are unix nanoseconds (UTC).

-- One row per image of a task's last run: `role` is 'runtime' (the base of the final stage),
-- 'buildtime' (the base of another stage) or 'output' (an image the run pushes). Only images
-- in a registry of this deployment are kept (`image_registry` is its key); `digest` is what the
-- tag named when the run started (NULL: the tag did not exist, or an output). A run replaces
-- all rows of its task. Task ids are lowercased; `task_registry` is the key of the registry
-- whose run queue the task's runs go to.
CREATE TABLE task_images (
    task           TEXT NOT NULL,
    task_registry  TEXT NOT NULL,
    image_registry TEXT NOT NULL,
    repository     TEXT NOT NULL,
    tag            TEXT NOT NULL,
    role           TEXT NOT NULL,
    digest         TEXT,
    recorded_at    INTEGER NOT NULL,
    PRIMARY KEY (task, image_registry, repository, tag, role)
) WITHOUT ROWID;
CREATE INDEX task_images_by_image ON task_images (image_registry, repository, tag);
