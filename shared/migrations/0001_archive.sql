-- The durable archive of lectures (shared/archive.py): sessions, their finals, alerts and flags, and
-- the share links that give read-only access to one session. Owners are stored as the SHA-256 of
-- the owner key, never the key itself. Every table has the unique key its writer's ON CONFLICT uses,
-- so a redelivered message writes nothing twice.

CREATE TABLE sessions (
    id          text PRIMARY KEY,
    owner       text,                         -- sha256 hex of the owner key; NULL: started without one
    created     double precision NOT NULL,    -- unix time
    config      jsonb NOT NULL DEFAULT '{}',
    ended       boolean NOT NULL DEFAULT false,
    segments    integer,                      -- utterances the VAD cut, once the audio ended
    duration    double precision NOT NULL DEFAULT 0
);
CREATE INDEX sessions_owner_created ON sessions (owner, created DESC);

CREATE TABLE finals (
    session_id  text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    segment     integer NOT NULL,
    start_s     double precision NOT NULL,
    end_s       double precision NOT NULL,
    text        text NOT NULL,
    extra       jsonb NOT NULL DEFAULT '{}',  -- anything else the final carried (speaker, words, ...)
    tsv         tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    PRIMARY KEY (session_id, segment)
);
CREATE INDEX finals_tsv ON finals USING gin (tsv);

CREATE TABLE alerts (
    session_id  text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    segment     integer NOT NULL,
    start_s     double precision NOT NULL,
    category    text NOT NULL,
    text        text NOT NULL,
    date        text,
    time        text,
    title       text,
    UNIQUE NULLS NOT DISTINCT (session_id, segment, category, text, date, time)
);

CREATE TABLE flags (
    session_id  text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    id          text NOT NULL,
    start_s     double precision NOT NULL,
    end_s       double precision NOT NULL,
    note        text NOT NULL DEFAULT '',
    PRIMARY KEY (session_id, id)
);

CREATE TABLE shares (
    token_hash  text PRIMARY KEY,             -- sha256 hex of the share token
    session_id  text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created     double precision NOT NULL
);
CREATE INDEX shares_session ON shares (session_id);
