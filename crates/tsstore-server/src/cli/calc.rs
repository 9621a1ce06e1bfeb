//! `tsstore calc`: a store's footprint and how much it holds, from the
//! engine's `Footprint` and `Capacity` (the arithmetic of `GET /api/calc`).

use tsstore::{Config, DataType, Encoding};

use super::{CalcArgs, CliError, human_bytes, human_duration};

pub(super) fn calc(args: &CalcArgs) -> Result<String, CliError> {
    let encoding: Encoding = args.encoding.parse()?;
    let config = Config {
        num_blocks: args.blocks,
        data_block_size: args.block_size,
        index_block_size: args.index_size,
        data_type: DataType::Binary,
        encoding,
    };
    let footprint = tsstore::Footprint::of(&config)?;
    let staging = match encoding {
        Encoding::Raw => String::new(),
        Encoding::Compressed => format!(
            ", {} of them for staging",
            tsstore::encoding::staging_blocks(args.blocks)
        ),
    };
    let mut out = format!(
        "data.tsdb   {} ({} blocks of {} bytes{staging})\nindex.tsdb  {}\nmeta.tsdb   {}\ntotal       {}",
        human_bytes(footprint.data_bytes),
        args.blocks,
        args.block_size,
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
            capacity.blocks_per_object, args.blocks
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
