//! The complete production configuration of docs/deploy.md loads as written,
//! with its secrets read from files through `_file` keys.

use coderunner::config::{Config, StoreKind};
use secrecy::ExposeSecret;

/// The document's only `toml` block.
fn production_toml() -> String {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/deploy.md")).unwrap();
    let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + doc[start..].find("```").unwrap();
    doc[start..end].to_owned()
}

#[test]
fn the_production_configuration_of_the_deploy_guide_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let secret = |name: &str, value: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        path.display().to_string()
    };
    let redis = secret("redis-url", "redis://:pw@127.0.0.1:6379/0");
    let key = secret("cloudcode-key", "KEY-FROM-FILE");
    let password = secret("superuser-password", "pass-from-file");
    // Where the guide says a secret comes from a file, the file it names.
    let toml = production_toml()
        .replace(
            "# url: from CODERUNNER__REDIS__URL_FILE",
            &format!("url_file = {redis:?}"),
        )
        .replace(
            "# api_key: from CODERUNNER__BACKENDLESS__API_KEY_FILE",
            &format!("api_key_file = {key:?}"),
        )
        .replace(
            "# password: from CODERUNNER__BACKENDLESS__SUPERUSER__PASSWORD_FILE",
            &format!("password_file = {password:?}"),
        );
    assert_eq!(toml.matches("_file = ").count(), 3, "{toml}");

    let config = Config::from_toml(&toml).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.transport.redis && !config.transport.http);
    assert_eq!(config.store.kind, StoreKind::Redis);
    assert_eq!(config.backendless.api_key.expose_secret(), "KEY-FROM-FILE");
}
