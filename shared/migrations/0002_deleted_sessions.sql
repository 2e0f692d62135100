-- Sessions their owner deleted: a late message of the archive worker (a redelivery, a session end
-- still queued) must not bring a deleted lecture back as an ownerless one.
CREATE TABLE deleted_sessions (
    id          text PRIMARY KEY,
    deleted     double precision NOT NULL
);
