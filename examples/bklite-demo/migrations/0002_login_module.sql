-- Login modules: the domains the sign-in page offers (get_login_module_domain_list reads them).
CREATE TABLE login_module (
  id      serial  PRIMARY KEY,
  name    text    NOT NULL,
  domain  text    NOT NULL UNIQUE,
  enabled boolean NOT NULL DEFAULT true
);
