//! `logai plugins new`: writes a buildable out-of-tree plugin project (Rust,
//! Python or JavaScript) with one typed tool, its native unit test, the
//! build command and the manifest lines to add.
//!
//! Python and JavaScript projects get a copy of their SDK and of the WIT
//! contract (both compiled into this binary), so they build anywhere. A Rust
//! project depends on the SDK crate by path (`--sdk`, default: the checkout
//! this binary was built from, when it is still there) or by git
//! (`--sdk-git`).

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// The pinned tool versions a Python or JavaScript project installs.
pub const COMPONENTIZE_PY: &str = "0.25.1";
pub const COMPONENTIZE_JS: &str = "0.23.0";
pub const ROLLDOWN: &str = "1.3.4";
/// ComponentizeJS 0.23 imports `@bytecodealliance/preview2-shim` at build time but lists it
/// only as a devDependency, so a locked install (`npm ci`) leaves it out: name it.
pub const PREVIEW2_SHIM: &str = "0.25.0";

const WIT: &str = include_str!("../../../plugins/sdk/wit/plugin.wit");

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        })
    }
}

/// `logai plugins new NAME [--lang L] [--dir D] [--sdk PATH | --sdk-git URL]`.
#[derive(clap::Args, Debug, Clone)]
pub struct NewArgs {
    /// The plugin's name (`[a-z][a-z0-9-]*`): the project directory, the
    /// manifest entry and the prefix of its tool's name.
    pub name: String,
    /// The plugin's language.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
    /// Where to create the project directory (default: the current directory).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Rust: the SDK crate (`plugins/sdk` of a logai checkout) as a path
    /// dependency. Default: the checkout this logai was built from.
    #[arg(long, conflicts_with = "sdk_git")]
    pub sdk: Option<PathBuf>,
    /// Rust: the logai repository URL, for the SDK as a git dependency.
    #[arg(long)]
    pub sdk_git: Option<String>,
}

/// What `new` wrote: the project directory, the built component's path and
/// the manifest lines.
#[derive(Debug)]
pub struct Created {
    pub dir: PathBuf,
    pub artifact: PathBuf,
    pub manifest: String,
    pub commands: Vec<String>,
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.len() <= 48
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !ok {
        bail!("plugin name {name:?} must be 1-48 characters of a-z, 0-9 and '-', starting with a letter (it names the directory, the crate or package and the tool)");
    }
    Ok(())
}

/// The SDK dependency line of a Rust project.
fn rust_sdk_dep(args: &NewArgs) -> anyhow::Result<String> {
    if let Some(url) = &args.sdk_git {
        return Ok(format!("logai-plugin-sdk = {{ git = {url:?}, package = \"logai-plugin-sdk\" }}"));
    }
    let sdk = match &args.sdk {
        Some(p) => p.clone(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk"),
    };
    let sdk = if sdk.join("plugins/sdk/Cargo.toml").is_file() { sdk.join("plugins/sdk") } else { sdk };
    if !sdk.join("Cargo.toml").is_file() || !sdk.join("wit/plugin.wit").is_file() {
        bail!(
            "no logai plugin SDK at {}: pass --sdk /path/to/logai/plugins/sdk (a checkout) or --sdk-git URL (the logai repository)",
            sdk.display()
        );
    }
    let sdk = sdk.canonicalize().with_context(|| format!("resolving {}", sdk.display()))?;
    Ok(format!("logai-plugin-sdk = {{ path = {:?} }}", sdk.display().to_string()))
}

/// The files of a project: (relative path, contents before substitution).
fn files(lang: Lang) -> Vec<(&'static str, &'static str)> {
    match lang {
        Lang::Rust => vec![
            ("Cargo.toml", include_str!("templates/rust/Cargo.toml")),
            ("src/lib.rs", include_str!("templates/rust/lib.rs")),
            ("README.md", include_str!("templates/rust/README.md")),
            (".gitignore", "/target\n"),
        ],
        Lang::Python => vec![
            ("app.py", include_str!("templates/python/app.py")),
            ("test_app.py", include_str!("templates/python/test_app.py")),
            ("requirements.txt", include_str!("templates/python/requirements.txt")),
            ("README.md", include_str!("templates/python/README.md")),
            ("logai_plugin/__init__.py", include_str!("../../../plugins/sdk-python/logai_plugin/__init__.py")),
            ("logai_plugin/_export.py", include_str!("../../../plugins/sdk-python/logai_plugin/_export.py")),
            ("logai_plugin/testing.py", include_str!("../../../plugins/sdk-python/logai_plugin/testing.py")),
            ("wit/plugin.wit", WIT),
            (".gitignore", "/.venv\n__pycache__/\n*.wasm\n"),
        ],
        Lang::Js => vec![
            ("app.js", include_str!("templates/js/app.js")),
            ("app.test.js", include_str!("templates/js/app.test.js")),
            ("package.json", include_str!("templates/js/package.json")),
            ("README.md", include_str!("templates/js/README.md")),
            ("logai-plugin/logai-plugin.js", include_str!("../../../plugins/sdk-js/logai-plugin.js")),
            ("logai-plugin/testing.js", include_str!("../../../plugins/sdk-js/testing.js")),
            ("logai-plugin/build.mjs", include_str!("../../../plugins/sdk-js/build.mjs")),
            ("logai-plugin/wasi/filesystem.wit", include_str!("../../../plugins/sdk-js/wasi/filesystem.wit")),
            ("logai-plugin/wasi/io.wit", include_str!("../../../plugins/sdk-js/wasi/io.wit")),
            ("logai-plugin/wasi/clocks.wit", include_str!("../../../plugins/sdk-js/wasi/clocks.wit")),
            ("wit/plugin.wit", WIT),
            (".gitignore", "/node_modules\n*.wasm\n"),
        ],
    }
}

/// The build and test commands a project's README gives, in order.
fn commands(lang: Lang) -> Vec<&'static str> {
    match lang {
        Lang::Rust => vec!["rustup target add wasm32-wasip2", "cargo test", "cargo build --release --target wasm32-wasip2"],
        Lang::Python => vec![
            "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt",
            ".venv/bin/python -m unittest",
            ".venv/bin/componentize-py -d wit -w tool-plugin componentize app -o {{artifact}}",
        ],
        Lang::Js => vec!["npm install", "npm test", "npm run build"],
    }
}

/// Write the project `args` describe; refuses to overwrite a directory that exists.
pub fn new(args: &NewArgs) -> anyhow::Result<Created> {
    check_name(&args.name)?;
    let dir = args.dir.join(&args.name);
    if dir.exists() {
        bail!("{} already exists; pick another name or --dir", dir.display());
    }
    let snake = args.name.replace('-', "_");
    let tool = format!("{snake}_hello");
    let artifact_rel = match args.lang {
        Lang::Rust => format!("target/wasm32-wasip2/release/{snake}.wasm"),
        Lang::Python | Lang::Js => format!("{}.wasm", args.name),
    };
    let sdk_dep = if args.lang == Lang::Rust { rust_sdk_dep(args)? } else { String::new() };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let abs = dir.canonicalize()?;
    let artifact = abs.join(&artifact_rel);
    let manifest = format!("[[plugin]]\nname = \"{}\"\ncomponent = {:?}", args.name, artifact.display().to_string());
    let vars = [
        ("{{name}}", args.name.as_str()),
        ("{{tool}}", tool.as_str()),
        ("{{artifact}}", artifact_rel.as_str()),
        ("{{manifest}}", manifest.as_str()),
        ("{{sdk_dep}}", sdk_dep.as_str()),
        ("{{componentize_py}}", COMPONENTIZE_PY),
        ("{{componentize_js}}", COMPONENTIZE_JS),
        ("{{rolldown}}", ROLLDOWN),
        ("{{preview2_shim}}", PREVIEW2_SHIM),
    ];
    for (rel, text) in files(args.lang) {
        let path = abs.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let body = vars.iter().fold(text.to_string(), |t, (k, v)| t.replace(k, v));
        std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
    }
    let commands = commands(args.lang).into_iter().map(|c| c.replace("{{artifact}}", &artifact_rel)).collect();
    Ok(Created { dir: abs, artifact, manifest, commands })
}

/// `logai plugins new`: write the project and say what to run next (on
/// stdout: this command serves no MCP).
pub fn run(args: &NewArgs) -> anyhow::Result<()> {
    let c = new(args)?;
    println!("created {} plugin {} in {}", args.lang, args.name, c.dir.display());
    println!("\nnext, in {}:", c.dir.display());
    for cmd in &c.commands {
        println!("  {cmd}");
    }
    println!("\nthen add to the logai manifest (config/logai.toml):\n\n{}\n", c.manifest);
    println!("and check it loads: logai config check --config config/logai.toml");
    Ok(())
}

#[cfg(test)]
mod tests;
