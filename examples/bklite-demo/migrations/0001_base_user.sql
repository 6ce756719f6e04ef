-- The user table BK-Lite's login checks (system_mgmt's user model, reduced to what the demo needs).
CREATE TABLE base_user (
  id            serial PRIMARY KEY,
  username      text        NOT NULL,
  domain        text        NOT NULL DEFAULT 'domain.com',
  password_hash text        NOT NULL,
  email         text,
  is_superuser  boolean     NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (username, domain)
);
