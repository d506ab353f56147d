//! The dev seed comes from `config/dev.toml` alone, and `config/default.toml`
//! documents the emulator's defaults.

use coderunner::emulator::{EmulatorConfig, KeyKind};

fn emulator_section(file: &str) -> EmulatorConfig {
    let path = format!("{}/config/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    doc["emulator"].clone().try_into().unwrap()
}

#[test]
fn the_dev_seed_is_read_from_dev_toml() {
    let dev = EmulatorConfig::dev();
    assert!(dev.validate().is_ok());
    assert_eq!(dev, emulator_section("dev.toml"));
    assert!(dev.keys.iter().any(|k| k.kind == KeyKind::CloudCode));
    assert!(!dev.users.is_empty() && !dev.tables.is_empty());
}

#[test]
fn default_toml_is_the_default() {
    assert_eq!(emulator_section("default.toml"), EmulatorConfig::default());
}
