//! `EmulatorConfig::dev()` and `config/*.toml` agree.

use coderunner::emulator::EmulatorConfig;

fn emulator_section(file: &str) -> EmulatorConfig {
    let path = format!("{}/config/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    doc["emulator"].clone().try_into().unwrap()
}

#[test]
fn dev_toml_is_the_dev_seed() {
    let from_file = emulator_section("dev.toml");
    assert_eq!(from_file, EmulatorConfig::dev());
    assert_eq!(from_file.users.len(), 3);
}

#[test]
fn default_toml_is_the_default() {
    assert_eq!(emulator_section("default.toml"), EmulatorConfig::default());
}
