//! The process's wasmtime [`Engine`]: component model, epoch
//! interruption (a ticker thread advances the epoch every [`TICK`]), and the
//! pooling allocator with copy-on-write memory images, falling back to the
//! on-demand allocator when the pool cannot be reserved. Large components
//! (interpreters) get a second engine with the on-demand allocator.

use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

/// How often the epoch advances. Deadlines are checked (and running guests
/// yield to the executor, so cancellation is noticed) once per tick.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// Largest linear memory any instance may have, whatever the manifest says
/// (the pooling allocator sizes its slots from it).
pub(crate) const MAX_MEMORY_BYTES: usize = 1 << 30;

/// Instances alive at once across the process (tool calls in flight,
/// exporters, load-time `tools.list` calls).
const MAX_INSTANCES: u32 = 64;

/// Bytes of each freed linear memory kept mapped for the next instance.
const KEEP_RESIDENT: usize = 4 << 20;

/// Which instance allocator the engine ended up with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocator {
    Pooling,
    OnDemand,
}

pub(crate) struct Shared {
    pub engine: Engine,
    pub allocator: Allocator,
}

static ENGINE: OnceLock<Result<Shared, String>> = OnceLock::new();
static ON_DEMAND: OnceLock<Result<Shared, String>> = OnceLock::new();

/// Components at least this large get [`for_component`]'s on-demand engine.
/// An interpreter with its pre-initialized heap (componentize-py about 18 MiB,
/// ComponentizeJS about 13 MiB) is; a Rust plugin (a few MiB) is not.
pub(crate) const LARGE_COMPONENT_BYTES: u64 = 10 << 20;

/// The process's engine (created on first use, with its epoch ticker).
pub(crate) fn shared() -> Result<&'static Shared, String> {
    ENGINE.get_or_init(|| with_ticker(build()?)).as_ref().map_err(Clone::clone)
}

/// The engine for the component at `path`: [`shared`], or for a large one
/// (at least [`LARGE_COMPONENT_BYTES`]) a second engine with the on-demand
/// allocator. A pooled slot keeps the image pages its last instance read
/// mapped for the next one (no page faults per call), so each warm slot of
/// an interpreter holds several MiB of resident pages, one set per instance
/// ever alive at once; an on-demand instance's memory is unmapped when its
/// store is dropped. Both engines have the same settings, so a precompiled
/// artifact serves either.
pub(crate) fn for_component(path: &std::path::Path) -> Result<&'static Shared, String> {
    let large = std::fs::metadata(path).map(|m| m.len() >= LARGE_COMPONENT_BYTES).unwrap_or(false);
    if !large || shared()?.allocator == Allocator::OnDemand {
        return shared();
    }
    ON_DEMAND
        .get_or_init(|| {
            let mut c = base_config();
            c.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            let engine = Engine::new(&c).map_err(|e| format!("cannot create the WebAssembly engine: {e:#}"))?;
            with_ticker(Shared { engine, allocator: Allocator::OnDemand })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Start `shared`'s epoch ticker thread.
fn with_ticker(shared: Shared) -> Result<Shared, String> {
    let engine = shared.engine.weak();
    std::thread::Builder::new()
        .name("logai-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(TICK);
            match engine.upgrade() {
                Some(e) => e.increment_epoch(),
                None => break,
            }
        })
        .map_err(|e| format!("cannot start the epoch ticker thread: {e}"))?;
    Ok(shared)
}

fn base_config() -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.cranelift_opt_level(OptLevel::Speed);
    // Guests get a bounded native stack; fibers get room for host frames too.
    c.max_wasm_stack(1 << 20);
    c.async_stack_size(2 << 20);
    c.memory_init_cow(true);
    c
}

fn pooling() -> PoolingAllocationConfig {
    let mut p = PoolingAllocationConfig::new();
    p.total_component_instances(MAX_INSTANCES);
    p.total_core_instances(MAX_INSTANCES * 8);
    p.total_memories(MAX_INSTANCES * 2);
    p.total_tables(MAX_INSTANCES * 8);
    p.total_stacks(MAX_INSTANCES);
    p.total_gc_heaps(1);
    p.max_memory_size(MAX_MEMORY_BYTES);
    p.max_memories_per_component(4);
    p.max_tables_per_component(16);
    p.max_core_instances_per_component(16);
    p.max_component_instance_size(4 << 20);
    p.max_core_instance_size(4 << 20);
    p.table_elements(100_000);
    // A fresh instance per call makes slot reset the hot path. Keep freed
    // slots resident and, where the kernel has PAGEMAP_SCAN (Linux >= 6.7),
    // reset only the pages the last instance dirtied, with memset: the next
    // instance of the same component then takes no page faults and no
    // madvise (and its TLB shootdowns) happens per call. Older kernels fall
    // back to madvise beyond the first KEEP_RESIDENT bytes.
    let keep: usize = std::env::var("LOGAI_POOL_KEEP_RESIDENT").ok().and_then(|v| v.parse().ok()).unwrap_or(KEEP_RESIDENT);
    p.linear_memory_keep_resident(keep);
    p.table_keep_resident(keep.min(1 << 20));
    if std::env::var("LOGAI_POOL_PAGEMAP").as_deref() != Ok("0") {
        p.pagemap_scan(wasmtime::Enabled::Auto);
    }
    p.max_unused_warm_slots(MAX_INSTANCES / 2);
    p
}

/// `LOGAI_WASM_ALLOCATOR=on-demand` forces the on-demand allocator.
fn build() -> Result<Shared, String> {
    let forced = std::env::var("LOGAI_WASM_ALLOCATOR").unwrap_or_default();
    if forced != "on-demand" {
        let mut c = base_config();
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling()));
        match Engine::new(&c) {
            Ok(engine) => return Ok(Shared { engine, allocator: Allocator::Pooling }),
            Err(e) => tracing::warn!("pooling allocator unavailable ({e:#}); using on-demand instance allocation"),
        }
    }
    let mut c = base_config();
    c.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    let engine = Engine::new(&c).map_err(|e| format!("cannot create the WebAssembly engine: {e:#}"))?;
    Ok(Shared { engine, allocator: Allocator::OnDemand })
}

/// A stable digest of everything that makes a precompiled artifact usable
/// by this engine (wasmtime version, target, settings): part of the cache key.
pub(crate) fn compatibility_digest(engine: &Engine) -> String {
    use sha2::Digest;
    use std::hash::{Hash, Hasher};
    struct ShaHasher(sha2::Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut h = ShaHasher(sha2::Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(&h.0.finalize()[..8])
}
