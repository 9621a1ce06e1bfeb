//! `tsstore key`: regenerate, list and revoke a store's API keys in its
//! `keys.json`, without a server.

use std::path::Path;

use super::{CliError, KeyCommand, PathArg, existing_store, settings};
use crate::keys::KeyFile;

impl KeyCommand {
    /// The store the command acts on and where to find it.
    fn target(&self) -> (&str, &PathArg) {
        match self {
            KeyCommand::Regenerate { store, path, .. }
            | KeyCommand::List { store, path }
            | KeyCommand::Revoke { store, path, .. } => (store, path),
        }
    }
}

pub(super) fn key(config: Option<&Path>, cmd: KeyCommand) -> Result<String, CliError> {
    let (store, path) = cmd.target();
    let dir = existing_store(&settings(config, path)?.base_path, store)?;
    match &cmd {
        KeyCommand::Regenerate { store, note, .. } => {
            let mut keys = KeyFile::new(store);
            let key = keys.add(note)?;
            keys.save(&dir)?;
            Ok(format!(
                "every earlier key of '{store}' is revoked\nAPI key (shown only now; keep it): {}\nkey id: {}",
                key.key, key.id
            ))
        }
        KeyCommand::List { store, .. } => {
            let keys = KeyFile::load(&dir, store)?;
            if keys.keys.is_empty() {
                return Ok(format!("store '{store}' has no keys"));
            }
            let mut out = format!("{:<8}  {:<30}  note", "id", "created");
            for k in &keys.keys {
                out.push_str(&format!("\n{:<8}  {:<30}  {}", k.id, k.created_at, k.note));
            }
            Ok(out)
        }
        KeyCommand::Revoke { store, id, .. } => {
            let mut keys = KeyFile::load(&dir, store)?;
            keys.revoke(id)?;
            keys.save(&dir)?;
            Ok(format!("key {id} of '{store}' is revoked"))
        }
    }
}
