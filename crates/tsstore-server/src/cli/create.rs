//! `tsstore create`: a store and its first key, through `provision`.

use tsstore::{DataType, RollupConfig, SyncPolicy};

use super::{CliError, CreateArgs, human_bytes};
use crate::config::Settings;
use crate::provision::{self, StoreRequest};
use crate::store_settings::StoreSettings;

pub(super) fn create(settings: &Settings, args: &CreateArgs) -> Result<String, CliError> {
    let config = StoreRequest {
        num_blocks: args.blocks,
        data_block_size: args.data_size,
        index_block_size: args.index_size,
        data_type: Some(&args.data_type),
        encoding: Some(&args.encoding),
    }
    .resolve(&settings.store_defaults, None)?;
    let rollups = if args.rollups.is_empty() {
        let rolls = matches!(config.data_type, DataType::Json | DataType::Schema);
        if rolls {
            settings.store_rollups.clone()
        } else {
            Vec::new()
        }
    } else {
        let parsed = args.rollups.iter().map(|r| r.parse::<RollupConfig>());
        parsed.collect::<Result<_, _>>()?
    };
    let note = "created by tsstore create";
    let (store, key) = provision::create_store_with(
        &settings.base_path,
        &args.name,
        config,
        SyncPolicy::Always,
        note,
        &StoreSettings {
            rollups,
            ..StoreSettings::default()
        },
        settings.max_total_store_bytes,
    )?;
    let rolled: Vec<String> = store.rollups().into_iter().map(|r| r.window).collect();
    let dir = store.path().to_path_buf();
    store.close()?;
    let size = config.num_blocks as u64 * config.data_block_size as u64;
    let encoding = match config.encoding {
        tsstore::Encoding::Raw => "",
        tsstore::Encoding::Compressed => ", compressed",
    };
    let rolled = match rolled.is_empty() {
        true => String::new(),
        false => format!(", rollups {}", rolled.join(", ")),
    };
    Ok(format!(
        "created store '{}' ({}{encoding}, {} blocks of {} bytes: {}{rolled}) in {}\n\
         API key (shown only now; keep it): {}\nkey id: {}",
        args.name,
        config.data_type,
        config.num_blocks,
        config.data_block_size,
        human_bytes(size),
        dir.display(),
        key.key,
        key.id
    ))
}
