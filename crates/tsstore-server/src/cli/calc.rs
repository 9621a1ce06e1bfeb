//! `tsstore calc`: a store's footprint and how much it holds, from the
//! engine's `Footprint` and `Capacity` (the arithmetic of `GET /api/calc`).

use tsstore::{Config, DataType, Encoding};

use super::{CalcArgs, CliError, human_bytes, human_duration};
use crate::config::Settings;

pub(super) fn calc(args: &CalcArgs) -> Result<String, CliError> {
    let encoding: Encoding = args.encoding.parse()?;
    // Clap requires both unless `--store` (which `measured` takes).
    let need = |v: Option<u32>, flag: &str| {
        v.ok_or_else(|| CliError::Usage(format!("{flag} is required")))
    };
    let (blocks, block_size) = (
        need(args.blocks, "--blocks")?,
        need(args.block_size, "--block-size")?,
    );
    let config = Config {
        num_blocks: blocks,
        data_block_size: block_size,
        index_block_size: args.index_size,
        data_type: DataType::Binary,
        encoding,
    };
    let footprint = tsstore::Footprint::of(&config)?;
    let staging = match encoding {
        Encoding::Raw => String::new(),
        Encoding::Compressed => format!(
            ", {} of them for staging",
            tsstore::encoding::staging_blocks(blocks)
        ),
    };
    let mut out = format!(
        "data.tsdb   {} ({} blocks of {} bytes{staging})\nindex.tsdb  {}\nmeta.tsdb   {}\ntotal       {}",
        human_bytes(footprint.data_bytes),
        blocks,
        block_size,
        human_bytes(footprint.index_bytes),
        human_bytes(footprint.meta_bytes),
        human_bytes(footprint.total_bytes)
    );
    let mut rolled = 0;
    for spec in &args.rollups {
        let plan = spec
            .parse::<tsstore::RollupConfig>()?
            .plan(&config, args.object_size)?;
        rolled += plan.total_bytes;
        out.push_str(&format!(
            "\nrollup {:<5} {} ({} blocks): {} windows, about {} back",
            plan.window,
            human_bytes(plan.total_bytes),
            plan.num_blocks,
            plan.rows,
            human_duration(plan.history_ns as f64 / 1e9)
        ));
    }
    if rolled > 0 {
        out.push_str(&format!(
            "\nwith rollups {}",
            human_bytes(footprint.total_bytes + rolled)
        ));
    }
    let Some(size) = args.object_size else {
        if args.every.is_some() {
            return Err(CliError::Usage("--every needs --object-size".into()));
        }
        return Ok(out);
    };
    let capacity = tsstore::Capacity::expected(&config, size, args.ratio)?;
    if encoding == Encoding::Compressed {
        out.push_str(&format!(
            "\nreadings of {size} bytes compressing {}x: about {} per block, {} per MiB; \
             the ring holds about {} readings",
            args.ratio,
            capacity.objects_per_block,
            (capacity.max_objects as f64 * (1 << 20) as f64 / footprint.total_bytes as f64) as u64,
            capacity.max_objects
        ));
        if let Some(every) = &args.every {
            let d = tsstore::parse_duration(every)
                .map_err(|e| CliError::Usage(format!("--every: {e}")))?;
            out.push_str(&format!(
                "\nat one reading every {every}: about {} of history",
                human_duration(capacity.history(d).as_secs_f64())
            ));
        }
        return Ok(out);
    }
    if !capacity.fits() {
        return Err(CliError::Usage(format!(
            "an object of {size} bytes needs {} blocks; the ring has only {}",
            capacity.blocks_per_object, blocks
        )));
    }
    if capacity.packs() {
        out.push_str(&format!(
            "\nobjects of {size} bytes: {} per block (packed)",
            capacity.objects_per_block
        ));
    } else {
        out.push_str(&format!(
            "\nobjects of {size} bytes: each spans {} blocks",
            capacity.blocks_per_object
        ));
    }
    out.push_str(&format!(
        "\nthe ring holds {} objects",
        capacity.max_objects
    ));
    if let Some(every) = &args.every {
        let d =
            tsstore::parse_duration(every).map_err(|e| CliError::Usage(format!("--every: {e}")))?;
        out.push_str(&format!(
            "\nat one object every {every}: {} of history",
            human_duration(capacity.history(d).as_secs_f64())
        ));
    }
    Ok(out)
}

/// `tsstore calc --store NAME`: what a store's own records take, and how
/// far back raw and each rollup reach now and once full (a rollup's rows
/// measured when it has some, else estimated from the records' size).
pub(super) fn measured(settings: &Settings, args: &CalcArgs) -> Result<String, CliError> {
    let name = args.store.as_deref().unwrap_or_default();
    super::existing_store(&settings.base_path, name)?;
    let store = tsstore::Store::open_read_only(&settings.base_path, name)?;
    let st = store.stats();
    let config = store.config();
    let footprint = tsstore::Footprint::of(&config)?;
    let mut out = format!(
        "store {name}: {} {} store of {} blocks of {} bytes, {} on disk",
        st.encoding.as_str(),
        st.data_type.as_str(),
        config.num_blocks,
        config.data_block_size,
        human_bytes(footprint.total_bytes)
    );
    let reach = |from: Option<i64>, to: Option<i64>| match (from, to) {
        (Some(a), Some(b)) => human_duration((b - a).max(0) as f64 / 1e9),
        _ => "nothing yet".into(),
    };
    let records = st.object_count.filter(|&n| n > 0);
    let per_record = records.map(|n| st.bytes_used / n);
    out.push_str(&format!(
        "\nnow: reaching back {}{}, {:.0} % full",
        reach(st.oldest_timestamp, st.newest_timestamp),
        records.map_or_else(String::new, |n| format!(" with {n} records")),
        st.bytes_used as f64 * 100.0 / st.capacity_bytes.max(1) as f64,
    ));
    let planned = store.reach()?;
    let every = match &args.every {
        Some(every) => Some((
            every.as_str(),
            tsstore::parse_duration(every)
                .map_err(|e| CliError::Usage(format!("--every: {e}")))?
                .as_nanos() as f64,
        )),
        None => None,
    };
    if let Some(ns) = planned.interval_ns {
        out.push_str(&format!(
            "\nthe newest {} readings came every {} on average",
            planned.sampled,
            human_duration(ns / 1e9)
        ));
    }
    for e in &planned.encodings {
        let own = e.encoding == st.encoding;
        let full = match (every, e.full_span_ns) {
            (Some((text, ns)), _) => format!(
                ", about {} back at one every {text}",
                human_duration(ns * e.capacity_readings as f64 / 1e9)
            ),
            (None, Some(ns)) => format!(", about {} back", human_duration(ns / 1e9)),
            (None, None) => String::new(),
        };
        out.push_str(&format!(
            "\n{:<10} {:.1} bytes per reading ({}{}): {} readings when full{full}",
            e.encoding.as_str(),
            e.bytes_per_reading,
            if e.measured {
                "measured"
            } else {
                "estimated from the newest readings"
            },
            if own {
                ", this store"
            } else {
                ", a store of the same blocks"
            },
            e.capacity_readings,
        ));
    }
    for r in store.rollups() {
        out.push_str(&format!(
            "\nrollup {:<5} {} ({} blocks), reaching back {}{}",
            r.window,
            human_bytes(r.capacity_bytes),
            r.num_blocks,
            reach(
                r.oldest_timestamp.map(|e| e - r.window_ns),
                r.newest_timestamp
            ),
            if r.bytes_used > 0 && r.newest_timestamp > r.oldest_timestamp {
                let rows = (r.newest_timestamp.unwrap_or(0) - r.oldest_timestamp.unwrap_or(0))
                    / r.window_ns
                    + 1;
                let per_row = r.bytes_used / rows.max(1) as u64;
                let full = r.capacity_bytes / per_row.max(1);
                format!(
                    ", about {} when full",
                    human_duration(full as f64 * r.window_ns as f64 / 1e9)
                )
            } else {
                String::new()
            }
        ));
    }
    let header = tsstore::layout::OBJECT_HEADER_SIZE as u64;
    let payload = per_record.map(|b| b.saturating_sub(header));
    for spec in &args.rollups {
        let plan = spec
            .parse::<tsstore::RollupConfig>()?
            .plan(&config, payload)?;
        out.push_str(&format!(
            "\nrollup {:<5} (planned) {} ({} blocks): about {} back",
            plan.window,
            human_bytes(plan.total_bytes),
            plan.num_blocks,
            human_duration(plan.history_ns as f64 / 1e9)
        ));
    }
    store.close()?;
    Ok(out)
}
