//! The training step under CUDA graph capture: a few eager steps (cuDNN autotuning, momentum
//! buffers, gradients allocated), then the whole step (forward passes, losses, backward, fused
//! SGD) is captured once and replayed for every later batch of the same shape, with the batch
//! copied into the captured input tensors and the learning rate into a device scalar. Batches of
//! another shape (the last, partial one) take the eager step.

use tch::{Device, Kind, Tensor};

use super::epoch::{StepOutput, StepParts, train_step};
use super::optim::Optimizer;
use crate::cuda_graph::{Graph, SideStream};
use crate::error::Result;
use crate::extras::Lr;
use crate::losses::Target;
use crate::lower::Forward;

/// Eager steps before capture: the first initialises the momentum buffers, the following let
/// cuDNN's autotuner and the caching allocator settle.
const EAGER_STEPS: usize = 3;

/// The captured step's target: hard labels or soft distributions, as the captured batch had.
enum StaticTarget {
    Hard(Tensor),
    Soft(Tensor),
}

impl StaticTarget {
    fn copy_of(t: Target) -> Self {
        match t {
            Target::Hard(y) => StaticTarget::Hard(y.copy()),
            Target::Soft(y) => StaticTarget::Soft(y.copy()),
        }
    }

    fn as_target(&self) -> Target<'_> {
        match self {
            StaticTarget::Hard(y) => Target::Hard(y),
            StaticTarget::Soft(y) => Target::Soft(y),
        }
    }

    /// Whether `t` is of the captured kind and shape.
    fn matches(&self, t: &Target) -> bool {
        match (self, t) {
            (StaticTarget::Hard(s), Target::Hard(y)) | (StaticTarget::Soft(s), Target::Soft(y)) => {
                s.size() == y.size()
            }
            _ => false,
        }
    }

    /// Copies `t` in (checked by [`StaticTarget::matches`]).
    fn load(&mut self, t: Target) {
        match (self, t) {
            (StaticTarget::Hard(s), Target::Hard(y)) | (StaticTarget::Soft(s), Target::Soft(y)) => {
                s.copy_(y)
            }
            _ => unreachable!("checked by matches"),
        }
    }
}

/// The captured step and the tensors it reads and writes.
struct Captured {
    x: Tensor,
    target: StaticTarget,
    /// The teachers' cached logits, when the stage reads them (`stages.teacher_cache`).
    teacher_logits: Option<Tensor>,
    lr: Tensor,
    graph: Graph,
    out: StepOutput,
}

/// Runs training steps eagerly or, once captured, by graph replay. Lives for one stage (one
/// optimizer); on CUDA it keeps the device on a side stream while alive.
pub(crate) struct StepRunner {
    captured: Option<Captured>,
    eager_steps: usize,
    /// The largest batch seen: capture waits for a batch of this size, so that a partial last
    /// batch is never the captured shape.
    largest: i64,
    /// Off when graphs were not asked for, cannot be used, or capture failed.
    enabled: bool,
    replays: u64,
    _stream: Option<SideStream>,
}

impl StepRunner {
    /// A runner using graphs when `wanted`, on CUDA, and possible for `opt`; otherwise eager.
    /// `note` receives one line saying why graphs are off, when they were wanted.
    pub(crate) fn new(
        wanted: bool,
        device: Device,
        opt: &Optimizer,
        note: &dyn Fn(&str),
    ) -> Result<Self> {
        let eager = StepRunner {
            captured: None,
            eager_steps: 0,
            largest: 0,
            enabled: false,
            replays: 0,
            _stream: None,
        };
        let Device::Cuda(index) = device else {
            return Ok(eager);
        };
        if !wanted {
            return Ok(eager);
        }
        if let Some(why) = opt.graph_obstacle() {
            note(&format!("CUDA graphs off: {why}"));
            return Ok(eager);
        }
        if let Err(why) = crate::cuda_graph::available() {
            note(&format!("CUDA graphs off: {why}"));
            return Ok(eager);
        }
        Ok(StepRunner { enabled: true, _stream: Some(SideStream::enter(index)?), ..eager })
    }

    /// Steps taken by replaying the captured graph.
    pub(crate) fn replays(&self) -> u64 {
        self.replays
    }

    /// One training step (see [`train_step`]); the outputs of a replayed step are the captured
    /// tensors, valid until the next step.
    #[allow(clippy::too_many_arguments)] // the step's inputs, as train_step's, plus its note
    pub(crate) fn step(
        &mut self,
        p: &StepParts,
        opt: &mut Optimizer,
        x: &Tensor,
        target: Target,
        teacher_logits: Option<&Tensor>,
        lr: f64,
        note: &dyn Fn(&str),
    ) -> Result<StepOutput> {
        let n = x.size().first().copied().unwrap_or(0);
        if self.enabled && self.eager_steps >= EAGER_STEPS {
            if let Some(c) = &self.captured {
                let same_logits = match (&c.teacher_logits, teacher_logits) {
                    (Some(s), Some(t)) => s.size() == t.size(),
                    (None, None) => true,
                    _ => false,
                };
                if c.x.size() == x.size() && c.target.matches(&target) && same_logits {
                    return self.replay(opt, x, target, teacher_logits, lr);
                }
            } else if n >= self.largest {
                match self.capture(p, opt, x, target, teacher_logits, lr) {
                    Ok(()) => {
                        note("training step captured as a CUDA graph; replayed from now on");
                        return self.replay_captured(opt);
                    }
                    Err(e) => {
                        note(&format!("CUDA graphs off, training continues eagerly: {e}"));
                        self.enabled = false;
                    }
                }
            }
        }
        self.eager_steps += 1;
        self.largest = self.largest.max(n);
        train_step(p, opt, x, target, teacher_logits, Lr::Value(lr))
    }

    fn capture(
        &mut self,
        p: &StepParts,
        opt: &mut Optimizer,
        x: &Tensor,
        target: Target,
        teacher_logits: Option<&Tensor>,
        lr: f64,
    ) -> Result<()> {
        let sx = x.copy();
        if p.student.is_channels_last() {
            // The step converts its input in place; the captured input must already be
            // channels-last, or the graph would read a buffer replays no longer fill.
            crate::extras::channels_last_(&sx)?;
        }
        let st = StaticTarget::copy_of(target);
        let stl = teacher_logits.map(Tensor::copy);
        let slr = Tensor::full([], lr, (Kind::Float, x.device()));
        let steps_before = opt.steps();
        let captured = Graph::capture(|| {
            train_step(p, opt, &sx, st.as_target(), stl.as_ref(), Lr::Tensor(&slr))
        });
        // Capture recorded the update without running it: the replay that follows runs it.
        opt.set_steps(steps_before);
        let (graph, out) = captured?;
        self.captured =
            Some(Captured { x: sx, target: st, teacher_logits: stl, lr: slr, graph, out });
        Ok(())
    }

    fn replay(
        &mut self,
        opt: &mut Optimizer,
        x: &Tensor,
        target: Target,
        teacher_logits: Option<&Tensor>,
        lr: f64,
    ) -> Result<StepOutput> {
        let c = self.captured.as_mut().expect("captured");
        c.x.copy_(x);
        c.target.load(target);
        if let (Some(s), Some(t)) = (&mut c.teacher_logits, teacher_logits) {
            s.copy_(t);
        }
        let _ = c.lr.fill_(lr);
        self.replay_captured(opt)
    }

    fn replay_captured(&mut self, opt: &mut Optimizer) -> Result<StepOutput> {
        let c = self.captured.as_ref().expect("captured");
        c.graph.replay()?;
        opt.count_replayed_step();
        self.replays += 1;
        let (out, loss, terms) = &c.out;
        let terms = terms.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect();
        let out = Forward {
            logits: out.logits.shallow_clone(),
            taps: out.taps.iter().map(Tensor::shallow_clone).collect(),
        };
        Ok((out, loss.shallow_clone(), terms))
    }
}
