"""Typed, documented configs; each is saved beside every run and inside every checkpoint."""

from __future__ import annotations

import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass


@dataclass
class ModelConfig:
    code_dim: int = 16
    """Size of a concept code w (one for w_x, one for w_a)."""
    hidden: int = 128
    """Width of the two hidden layers of g and of f."""
    relational: bool = True
    """Relation network over entity pairs (eq. 4); False is the paper's per-entity 'no RN'."""
    head: str = "linear"
    """'linear': E = f(.), trained with an energy^2 regulariser; 'square': the paper's f(.)^2."""
    code_film: bool = False
    """Also scale and shift g's second hidden layer by the code (FiLM: h * (1 + gamma(w)) +
    beta(w), zero-initialised), so the code can switch features of every pair on and off
    instead of only shifting g's input. Off: measured worse (README, ablations)."""
    motion_features: bool = False
    """Give each entity of a scored trajectory its displacement since the first state, so the
    energy can tell who has moved yet ('after': stay put until the cross moves, which a sum
    of per-state terms cannot see otherwise); one-state inputs are unaffected. Off: 'after'
    did not learn with it either within 800 steps alone (README)."""
    code_scale: bool = False
    """Scale each entity feature of g's input by (1 + s(w)), s linear in the code and
    zero-initialised, so a code can turn a coordinate off (a line ignores x, a point does
    not) instead of only shifting g's first layer. On in region_point.pt (the paper's
    figures beaten on the CPU, 0.0038 / 0.0002); off by default, where with all families it
    gained a point, not on the places (docs/learning.md)."""
    pair_distance: bool = False
    """Give g each pair's distance ||p_i - p_j|| (in g's input coordinates, so code_scale
    weighs its axes) as one more input of its first layer, so that a relation of distances
    (closest, farthest: which entity is nearest the cross) is a first-layer feature instead
    of a norm the hidden layers must approximate from the two positions. On in default.pt
    (the recipe without figure_input: 48.5% / 48.7% held-out against 44.7% / 46.8% without;
    between 60% against 12%); off here so that older checkpoints load as they were trained
    (docs/learning.md)."""
    figure_input: bool = False
    """Give f the attended entities' spread, the square roots of their position scatter's
    two eigenvalues (gate-weighted, averaged over the scored states): a figure-level
    input, zero across a line, that the pair sum holds only through f's own arithmetic.
    Line alone 100% against 24% at 800 steps, triangle 94% against 74% beside the other
    figures, but line there 2% (docs/learning.md, "A distance input"). Generation's
    energy only: identification's scores masks, and a spread that changes with the mask
    cost quantity-2 and -3 most of their success (the full recipe: 37% against 48.6%).
    On in default.pt (52.0% / 51.5% held-out against 48.5% / 48.7% without, one
    generation chain each; triangle 76% against 53%, line 6% against 31%); off here so
    that older checkpoints load as they were trained."""
    fractional_gate: str = "input"
    """How the relation network scores a gate strictly between 0 and 1 (identification's
    sigmoid(a)): 'input': g takes the fractional gate_j as an input (the paper);
    'expected': the pair sum's expectation over independent binary masks
    m_j ~ Bernoulli(gate_j), g seeing only 0 or 1, multilinear in the gates, so a chain over
    them runs g once instead of at every step (a 2x faster training step). Off: f of an
    expected sum cannot tell a fractional gate from a mask (two of six attended and all six
    at 1/3 pool alike), and identification learned slower (README). Both agree at 0/1."""
    context_nets: bool = False
    """One energy network per context: generation's E(x, a, w_x) and identification's
    E(x0, a, w_a) each their own f and g (the same shapes, twice the parameters, the same
    work a step), so what one context learns cannot crowd out the other. Off, as in the
    paper: over the default's recipe it scored 38.0% / 39.0% against 42.3% / 42.5%, the
    arrangements (join, line, shapes) learning half as well without identification
    beside them (docs/learning.md)."""
    pair_gate: str = "attended-to-all"
    """How much pair (i, j) counts, beyond gate_i (g always sees gate_j): 'attended-to-all':
    every valid j, so unattended reference entities stay visible; 'relevance':
    gate_j + (1 - gate_j) * rho(x_j, w), rho a learned per-entity relevance starting near 0,
    so distractors drop out of absolute concepts (faster generation, slower identification
    and relational concepts); 'attended-pairs': the paper's gate_j."""


@dataclass
class SamplerConfig:
    """One Langevin chain over one variable (x, a or w)."""

    steps: int = 10
    """K, the number of Langevin steps."""
    step_size: float = 0.1
    """Initial step size (learned per step and per feature when learn_step_size)."""
    noise: float = 0.0
    """Standard deviation of the Gaussian noise added at each step."""
    learn_step_size: bool = True
    """Meta-SGD style learned step size per step and per feature dimension."""
    normalize: bool = False
    """Divide each step's gradient by its RMS over the coordinates that move (all of a row's
    features, or those the chain's mask marks), so a step's length is the learned step size
    whatever the energy's slope."""
    clip: float | None = None
    """Clamp the size of every update to this (per coordinate); None for no clamp."""


def _x_sampler() -> SamplerConfig:
    return SamplerConfig(steps=10, step_size=1.0)


def _a_sampler() -> SamplerConfig:
    return SamplerConfig(steps=10, step_size=5.0)


def _w_sampler() -> SamplerConfig:
    return SamplerConfig(steps=5, step_size=0.1, normalize=True)


@dataclass
class InferenceConfig:
    x: SamplerConfig = field(default_factory=_x_sampler)
    """Generation: Langevin over the changeable features of the attended entities."""
    a: SamplerConfig = field(default_factory=_a_sampler)
    """Identification: Langevin over attention logits, starting from a unit Gaussian."""
    w: SamplerConfig = field(default_factory=_w_sampler)
    """Code inference from demos, starting from a learned code (zero-initialised)."""
    learned_code_init: bool = True
    """Start code inference from a learned vector; False: from a unit Gaussian (the paper)."""
    code_encoder: bool = True
    """Add to the start a per-task offset read off the demos by a small set encoder
    (energy_model.encoder); the Langevin steps on the demos' energy then refine it."""
    code_likelihood: bool = False
    """Identification's code inference minimises the demos' negative log-likelihood,
    E(demo) + log sum exp(-E) over the demonstrated mask and its one-flip and one-swap
    neighbors (mask_search.neighbor_masks), not their energy alone. Energy alone cannot
    prefer a specific concept's code to a generic one that scores the demos as low
    (quantity-1's "any one entity" against closest's); the likelihood can, since the generic
    code spreads its mass over the neighbors. Costs the neighbors' energies at every code
    step."""
    generation_likelihood: bool = False
    """Generation's code inference minimises each demo's negative log-likelihood,
    E(demo) + log sum exp(-E) over the demonstrated outcome, the outcome held at its start
    and the outcome noised at GENERATION_LIKELIHOOD_NOISE on what generation moves, not its
    energy alone: the same argument as code_likelihood's, for a generic code that scores a
    line's demos as low as a triangle's (any compact figure). Costs the contrasts' energies
    at every code step."""
    identification: str = "search"
    """How test-time identification takes eq. 3's argmin over a: 'search', over the binary
    masks attention can be (energy_model.mask_search: every mask up to 10 entities,
    single-flip descent from `restarts` random masks beyond); 'langevin', `restarts`
    chains over attention logits (the paper's, and training's: LossConfig
    identification_negative)."""
    restarts: int = 8
    """Test-time identification under 'langevin' runs this many chains per scene from
    independent random starts and keeps the one that ends at the lowest energy (training
    runs one); under 'search', this many descents per scene too large to enumerate."""
    generation_restarts: int = 32
    """Test-time generation runs this many chains per query, the first from x^0 as in
    training, the others from what generation moves drawn uniformly in the world, and keeps
    the one that ends at the lowest energy (training runs one, from x^0). On default.pt, 32
    chains score 1.2 to 2.0 points over one on three held-out seeds (README, "Generation
    from several starts")."""


IDENTIFICATIONS = ("langevin", "search")


TEST_TIME_ONLY = ("identification", "restarts", "generation_restarts")
"""InferenceConfig fields that change no training: a fine-tune (--init) may set them anew."""


def paper_inference() -> InferenceConfig:
    """The paper's literal sampler: alpha/2 gradient steps with N(0, alpha) noise, alpha=0.01,
    codes from a unit Gaussian, nothing learned."""
    alpha = 0.01
    lit = SamplerConfig(
        steps=10, step_size=alpha / 2, noise=alpha**0.5, learn_step_size=False, normalize=False
    )
    return InferenceConfig(
        x=SamplerConfig(**asdict(lit)),
        a=SamplerConfig(**asdict(lit)),
        w=SamplerConfig(**asdict(lit)),
        learned_code_init=False,
        code_encoder=False,
        identification="langevin",
    )


@dataclass
class LossConfig:
    contexts: str = "both"
    """Train on 'generation', 'identification' or 'both' contexts."""
    kl: bool = True
    """Include L_KL (differentiate through the query samplers). False, with perturbed near
    misses in its place: a 2x faster step and parity at 300 steps, but 6 to 10 points
    lower over the default's full recipe (docs/learning.md, "Without L_KL, near misses in
    its place")."""
    unroll: int = 0
    """Differentiate the query chains (L_KL, target) through their last `unroll` steps
    only, as Du et al. (2021) do through the last one; 0: through every step (Algorithm
    1). The demos' code inference keeps its whole graph either way. At 2, 1.8x faster a
    step and 29% / 32% against 35% / 32% with all families at 300 steps (README)."""
    kl_identification: bool = True
    """With kl, include identification's L_KL term too. False: its chain runs without a
    graph (unless target > 0): a step 1.4 to 1.6x faster (differentiating through it is
    the costliest part of a step: every pair, every step, second order) and the same mean
    held-out success over a full training, moved from identification to generation
    (README, Speed)."""
    kl_generation: bool = True
    """With kl, include generation's L_KL term too. False: its chain runs without a graph
    (unless target > 0); with perturbed near misses in its place, 36.0% against 36.1% at
    300 steps, no faster (identification's chain is the costly one; docs/learning.md)."""
    identification_negative: str = "chain"
    """Identification's L_ML negative: 'chain', the end of a Langevin chain over attention
    logits (Algorithm 1); 'search', the lowest-energy binary mask (energy_model.mask_search),
    so that no identification chain runs and there is no identification L_KL or target.
    Over the default's recipe 43.0% / 41.2% held-out against 42.3% / 42.5% (docs/learning.md,
    "Identification over binary masks")."""
    energy_reg: float = 0.1
    """Weight of the energy^2 regulariser on positive and negative energies."""
    energy_reg_identification: float | None = None
    """The regulariser's weight on identification's energies alone (None: energy_reg).
    Over the default's recipe energy_reg 0.01 took the counts to 98-100% and cost
    generation (join 32% against 60%); 0.01 here alone kept generation and part of the
    counts' gain, 40.6% / 42.2% against 42.3% / 42.5% (docs/learning.md, "The regulariser's
    weight")."""
    target: float = 0.0
    """Weight of a supervised loss on the samplers' outputs (squared distance of x~ to the
    demonstrated x^1, cross-entropy of a~ against the true attention), differentiated
    through the unrolled chains and the code inference, as in IREM (Du et al. 2022); 0 off."""
    target_decay: float = 0.0
    """0: the target weight stays constant; f in (0, 1]: it decays on a cosine to 0 at
    fraction f of training and stays 0 after, so the supervised term can bootstrap codes
    that carry the concept and then leave the energy free to keep several answers."""
    code_contrast: float = 0.0
    """Weight of softplus(E(x, a, w_own) - E(x, a, w_other)) on each query's true outcome,
    w_other the code inferred for a sibling task: with it on, batches come in pairs of
    sibling concepts (north and west, region-point and region-circle, two colors), so codes
    must carry what tells siblings apart, not only the family's kind; 0 off."""
    perturbed: float = 0.0
    """Weight of softplus(E(truth) - E(near miss)) on each query, near misses made without a
    chain: for generation the demonstrated outcome with Gaussian noise on what generation
    moves (scale log-uniform in [perturb_scale / 10, perturb_scale] per query) and the
    start x^0 itself, for identification the true attention with one valid entity flipped.
    The chain's sample shapes the energy only where the chain ends; these shape it all
    around the truth. 0, off: no clear gain with all families nor the region families
    (README)."""
    perturb_scale: float = 0.5
    """Largest noise scale of the perturbed generation negatives (world units)."""
    transplant: float = 0.0
    """Weight of softplus(E(truth) - E(transplant)) on each generation query, the transplant
    its scene with what generation moves of the attended entities taken from another query
    of the same task: wrong where the concept depends on the scene (north of this scene's
    cross), as right as the truth where it does not (a place, a color, a shape anywhere),
    so in expectation it teaches only the scene-dependent part; 0 off."""
    score_match: float = 0.0
    """Weight of denoising score matching on generation's energy (algorithm.score_matching):
    noise on the demonstrated outcome's moving features, the energy's gradient there asked
    to point back by eps / sigma (times score_temperature), so the energy's minimum is the
    data's at every noise scale, which the chain's negatives shape only where it ends; 0 off.
    Measured (docs/learning.md, "Denoising score matching"): at 1 the five region families
    reach 59% / 55% against 21% / 23%, but with all families it trades identification for
    generation (held-out 42.2% / 44.5% at 1, 43.0% / 44.1% at 0.3, against the default's
    42.3% / 42.5%), so it is off by default."""
    score_match_start: float = 0.0
    """Fraction of training before score matching turns on (0: from the first step), since
    the term costs half a step again. Over the default's recipe with the per-family scales,
    the last third only (0.6667, 61 minutes) scored 42.9% / 44.4% held-out against 43.0% /
    45.2% for the term throughout and 42.3% / 42.5% without it (docs/learning.md,
    "Denoising score matching")."""
    score_scale: float = 0.3
    """Largest noise scale of score matching (world units); scales are log-uniform down to a
    tenth of it. A trade (docs/learning.md, "Score matching in a growing mix"): 0.3 shapes
    the slope far from the outcome, which the places need; 0.1 keeps figures with many
    right answers (line, triangle, square) sharp and gives back most of the places; an
    energy given the noise level as an input, annealed along the chain, did worse at both
    (docs/learning.md, "A noise-conditional energy")."""
    score_scales: list[str] = field(default_factory=list)
    """Per-family overrides of score_scale, as FAMILY=SCALE (FAMILY the action generation
    follows), e.g. line=0.1,triangle=0.1,square=0.1: one energy, each concept shaped at the
    noise scale it needs (places far out, figures with many right answers close in); a
    scale of 0 leaves a family out of score matching.
    Beside the arrangements it keeps most of both halves (docs/learning.md, "Score matching
    in a growing mix"); over the default's full recipe with the line, triangle and square at
    0.1, 43.0% / 45.2% held-out against 42.3% / 42.5% (assets/checkpoints/
    default_score_match.pt), for half as much time again, so empty by default."""
    score_temperature: float = 0.1
    """kappa: score matching fits exp(-E / kappa) to the smoothed data density, so the energy's
    differences stay near the scale the energy^2 regulariser keeps (0.2 from a miss of 0.1)."""


ROLES = ("argument", "action")
"""The roles a family is tested in: identify the attended entities, or generate the outcome."""


@dataclass
class TrainConfig:
    concepts: list[str] | None = None
    """Concept families to train on (comma-separated); None for all of them."""
    roles: tuple[str, ...] = ROLES
    """The roles the families are trained and evaluated in: argument (identify the attended
    entities), action (generate the outcome), or both."""
    steps: int = 3000
    """Meta-training steps (Adam updates)."""
    batch_size: int = 32
    """Tasks per step, each of 5 demos and `queries` queries."""
    queries: int = 5
    """Query events per training task, each run through the sampling chains: most of a
    step's cost. Fewer buy more tasks (more concept instances) at the same cost. Test-time
    tasks keep 5 demos and 5 queries whatever this is."""
    lr: float = 1e-3
    """Adam learning rate, decayed to zero on a cosine."""
    step_size_lr_scale: float = 1.0
    """The samplers' learned step sizes (log scale) learn this many times faster than weights."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0 disables)."""
    balance_contexts: bool = False
    """Divide the generation and the identification gradient each by a running mean of its
    own norm before summing them (energy_model.balance): identification's is 4 (all
    families) to 20 (region-point) times larger and otherwise sets the pace of the shared
    weights. Off: no gain with all families (README)."""
    seed: int = 0
    """Seeds the data stream, the initial weights and the samplers' noise."""
    device: str = "cpu"
    """'cpu' or 'cuda'."""
    threads: int = 1
    """torch CPU threads (a second thread gains little on 2 cores)."""
    workers: int = 0
    """Processes that build batches ahead of the training step (0: built in the main process;
    a GPU run wants several, a 2-core CPU none). The data is the same for any number."""
    n_entities: tuple[int, int] = (3, 8)
    """Fewest and most entities per scene."""
    eval_every: int = 500
    """Evaluate on held-out tasks every this many steps (0: only at the end)."""
    eval_tasks: int = 10
    """Held-out tasks per family and role at each evaluation."""
    checkpoint_every: int = 100
    """Write runs/NAME/last.pt every this many steps."""
    max_energy: float = 1e4
    """Stop when an energy's magnitude exceeds this (the run has blown up)."""
    ema: float = 0.0
    """Decay of an exponential moving average of the weights, kept beside them (0: off). The
    run then also evaluates the average at each evaluation and writes it as final_ema.pt, a
    checkpoint like final.pt; 0.99 averages over about the last 100 steps."""
    init: str | None = None
    """Start from this checkpoint's weights (a fine-tune: a fresh optimiser and learning-rate
    schedule); its model and inference configs must match this run's. None: random weights."""
    model: ModelConfig = field(default_factory=ModelConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    loss: LossConfig = field(default_factory=LossConfig)


def from_dict(cls, data: dict):
    """Build a (nested) config dataclass from a dict, refusing unknown keys."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(sorted(unknown))}")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if not _fits(hint, value):
            raise ValueError(f"{cls.__name__}.{name} must be {_type_name(hint)}, got {value!r}")
        if is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value)
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def _fits(hint, value) -> bool:
    """Whether a value read from JSON suits a config field's type hint (an int for a float,
    a list for a tuple; a bool is no number)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(a, value) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint in (int, float):
        allowed = int if hint is int else (int, float)
        return isinstance(value, allowed) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple):
        return isinstance(value, (list, tuple)) and all(_fits(args[0], v) for v in value)
    if is_dataclass(hint):
        return isinstance(value, (dict, hint))
    return True


def _type_name(hint) -> str:
    if is_dataclass(hint):
        return f"an object of {hint.__name__} keys"
    return str(hint).replace("typing.", "") if typing.get_origin(hint) else hint.__name__
