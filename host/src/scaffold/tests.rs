use super::*;

fn args(dir: &Path, name: &str, lang: Lang) -> NewArgs {
    NewArgs { name: name.into(), lang, dir: dir.to_path_buf(), sdk: None, sdk_git: None }
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("logai-scaffold-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn every_language_writes_its_files_with_nothing_left_to_substitute() {
    for lang in [Lang::Rust, Lang::Python, Lang::Js] {
        let d = tmp(&lang.to_string());
        let c = new(&args(&d, "team-tools", lang)).unwrap();
        for (rel, _) in files(lang) {
            let text = std::fs::read_to_string(c.dir.join(rel)).unwrap();
            assert!(!text.contains("{{"), "{lang} {rel} has an unsubstituted placeholder");
        }
        assert!(c.manifest.contains("name = \"team-tools\""), "{}", c.manifest);
        assert!(c.manifest.contains(&c.artifact.display().to_string()));
        assert!(c.commands.iter().all(|c| !c.contains("{{")));
        std::fs::remove_dir_all(&d).unwrap();
    }
}

#[test]
fn rust_depends_on_this_checkouts_sdk_by_path_or_on_git() {
    let d = tmp("rust-dep");
    let c = new(&args(&d, "a1", Lang::Rust)).unwrap();
    let toml = std::fs::read_to_string(c.dir.join("Cargo.toml")).unwrap();
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk").canonicalize().unwrap();
    assert!(toml.contains(&format!("logai-plugin-sdk = {{ path = {:?} }}", sdk.display().to_string())), "{toml}");
    assert!(std::fs::read_to_string(c.dir.join("src/lib.rs")).unwrap().contains("const NAME: &'static str = \"a1_hello\";"));
    let mut a = args(&d, "a2", Lang::Rust);
    a.sdk_git = Some("https://example.invalid/logai".into());
    let toml = std::fs::read_to_string(new(&a).unwrap().dir.join("Cargo.toml")).unwrap();
    assert!(toml.contains("git = \"https://example.invalid/logai\", package = \"logai-plugin-sdk\""), "{toml}");
    let mut a = args(&d, "a3", Lang::Rust);
    a.sdk = Some(d.clone());
    let e = new(&a).unwrap_err().to_string();
    assert!(e.contains("no logai plugin SDK at") && e.contains("--sdk-git"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn python_and_js_carry_their_sdk_and_the_wit() {
    let d = tmp("copies");
    let py = new(&args(&d, "p", Lang::Python)).unwrap();
    assert_eq!(std::fs::read_to_string(py.dir.join("wit/plugin.wit")).unwrap(), WIT);
    assert!(std::fs::read_to_string(py.dir.join("requirements.txt")).unwrap().contains(COMPONENTIZE_PY));
    assert!(py.commands[2].ends_with("-o p.wasm"), "{:?}", py.commands);
    let js = new(&args(&d, "j", Lang::Js)).unwrap();
    assert!(js.dir.join("logai-plugin/build.mjs").is_file());
    assert!(std::fs::read_to_string(js.dir.join("package.json")).unwrap().contains("-o j.wasm --wit wit"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn bad_names_and_existing_directories_are_refused() {
    let d = tmp("refuse");
    for bad in ["", "Team", "9lives", "a_b", "tail-", "a/b"] {
        let e = new(&args(&d, bad, Lang::Python)).unwrap_err().to_string();
        assert!(e.contains("must be 1-48 characters"), "{bad}: {e}");
    }
    new(&args(&d, "twice", Lang::Python)).unwrap();
    let e = new(&args(&d, "twice", Lang::Python)).unwrap_err().to_string();
    assert!(e.contains("already exists"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}
