//! {{name}}: a logai tool plugin. Each tool is a struct of arguments (its
//! JSON Schema derived from the type) and a `call`.

use logai_plugin_sdk::schemars::{self, JsonSchema};
use logai_plugin_sdk::{export_tools, log, Context, Error, SearchLimits, Tool, ToolSpec};
use serde::Deserialize;

/// Greet someone by name. Returns one line of text.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// Who to greet.
    #[schemars(length(min = 1, max = 200))]
    name: String,
    /// Greet in capitals.
    #[serde(default)]
    shout: bool,
}

impl Tool for Hello {
    const NAME: &'static str = "{{tool}}";
    type Output = String;
    fn call(self, ctx: &Context) -> Result<String, Error> {
        log::info(format!("greeting {} for {}", self.name, ctx.user()));
        let greeting = format!("Hello, {}!", self.name);
        Ok(if self.shout { greeting.to_uppercase() } else { greeting })
    }
    fn spec(spec: ToolSpec, _: &SearchLimits) -> ToolSpec {
        spec.title("Say hello").read_only()
    }
}

export_tools!(Plugin = Hello);

#[cfg(test)]
mod tests {
    use super::*;
    use logai_plugin_sdk::testing::TestHost;
    use logai_plugin_sdk::{json, ToolError};

    #[test]
    fn greets_and_logs() {
        let host = TestHost::new();
        let r = host.call::<Hello>(json!({"name": "Ada", "shout": true})).unwrap();
        assert_eq!(TestHost::text(&r), "HELLO, ADA!");
        assert_eq!(host.logs()[0].message, "greeting Ada for test@local");
    }

    #[test]
    fn a_wrong_argument_names_its_path() {
        match TestHost::new().call::<Hello>(json!({"name": 5})) {
            Err(ToolError::InvalidArguments(a)) => assert_eq!(a.path, "$.name"),
            other => panic!("{other:?}"),
        }
    }
}
