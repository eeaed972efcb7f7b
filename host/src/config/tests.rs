use super::*;

fn parse_str(text: &str) -> Result<Config, ConfigError> {
    let c = parse(text, "test.toml", Path::new("/cfg"))?;
    validate(&c, text, "test.toml")?;
    Ok(c)
}

#[test]
fn empty_manifest_has_defaults() {
    let c = parse_str("").unwrap();
    assert_eq!(c.limits.max_global_searches, 20);
    assert_eq!(c.limits.max_per_service_searches, 5);
    assert_eq!(c.cache.ttl_minutes, 10);
    assert!(c.plugin.is_empty());
}

#[test]
fn embedded_manifest_parses() {
    let c = parse(EMBEDDED_MANIFEST, "embedded", Path::new("config")).unwrap();
    assert!(c.plugin.iter().any(|p| p.name == "search-tools"));
    assert!(c.exporter.iter().all(|e| !e.enabled));
}

#[test]
fn unknown_key_names_file_line_and_column() {
    let err = parse_str("[server]\nname = \"x\"\nnmae = \"y\"\n").unwrap_err();
    assert_eq!(err.file, "test.toml");
    assert_eq!(err.line, Some(3));
    assert_eq!(err.column, Some(1));
    assert!(err.message.contains("nmae"), "{err}");
}

#[test]
fn typo_in_a_grant_is_an_error() {
    let err = parse_str("[[plugin]]\nname = \"a\"\ncomponent = \"a.wasm\"\nmemroy_mb = 3\n").unwrap_err();
    assert!(err.message.contains("memroy_mb"), "{err}");
    assert!(err.line.is_some(), "{err}");
}

#[test]
fn wrong_type_is_located() {
    let err = parse_str("[limits]\nmax_global_searches = \"many\"\n").unwrap_err();
    assert_eq!(err.line, Some(2));
    assert!(err.to_string().starts_with("test.toml:2:"), "{err}");
}

#[test]
fn duplicate_plugin_names_are_refused() {
    let text = "[[plugin]]\nname = \"a\"\ncomponent = \"a.wasm\"\n[[plugin]]\nname = \"a\"\ncomponent = \"b.wasm\"\n";
    let err = parse_str(text).unwrap_err();
    assert_eq!(err.line, Some(5));
    assert!(err.message.contains("two [[plugin]] entries are named 'a'"));
}

#[test]
fn grants_default_to_nothing() {
    let c = parse_str("[[plugin]]\nname = \"a\"\ncomponent = \"a.wasm\"\n").unwrap();
    assert_eq!(c.plugin[0].grants, Grants::default());
    assert!(c.plugin[0].enabled);
}

#[test]
fn exporters_are_off_by_default_and_carry_settings() {
    let c = parse_str("[[exporter]]\nname = \"x\"\ncomponent = \"x.wasm\"\nsettings = { dsn = \"http://k@h/1\" }\n").unwrap();
    assert!(!c.exporter[0].enabled);
    assert_eq!(c.exporter[0].settings["dsn"].as_str(), Some("http://k@h/1"));
}

#[test]
fn relative_paths_resolve_against_manifest_dir() {
    let c = parse_str("").unwrap();
    assert_eq!(c.resolve("x.wasm"), PathBuf::from("/cfg/x.wasm"));
    assert_eq!(c.resolve("/abs.wasm"), PathBuf::from("/abs.wasm"));
}
