/* SPDX-License-Identifier: MIT */
/*
 * detector_int: what the detector's own files share and nobody else
 * uses: the threshold table and struct detector_config's body, the
 * state of runs, tensors and alerts, one step's values, and the message
 * builders of detector_msg.c.  Everything here belongs to the thread
 * that owns the struct detector (see detector.c).
 */
#ifndef GW_DETECTOR_INT_H
#define GW_DETECTOR_INT_H

#include <stddef.h>
#include <stdint.h>

#include "baseline.h"
#include "batch.h"
#include "detector.h"

#define LN2	0.6931471805599453
#define LN10	2.302585092994046

/* X(field, "name", default, min, max, integer, "meaning") */
#define DETECTOR_CONFIG_TABLE(X)					\
	X(min_step, "min_step", 100, 0, 1e9, 1,				\
	    "points a series needs before its z rules run (hard rules never wait)") \
	X(cooldown, "cooldown", 100, 0, 1e9, 1,				\
	    "steps before a resolved alert may fire again at the same severity") \
	X(flap_cycles, "flap.cycles", 3, 1, 1e6, 1,			\
	    "more firings than this within flap.window double the resolve wait") \
	X(flap_window, "flap.window", 1000, 1, 1e9, 1,			\
	    "steps over which flap.cycles is counted")			\
	X(rebase_lr_factor, "rebase.lr_factor", 2, 1.01, 1e9, 0,	\
	    "a one-step lr change by this factor (up or down) re-baselines") \
	X(rebase_steps, "rebase.steps", 50, 0, 1e6, 1,			\
	    "steps of fast re-baselining after an lr change")		\
	X(rebase_a, "rebase.a", 0.2, 0.001, 1, 0,			\
	    "EW weight of the baselines while re-baselining")		\
	X(rebase_z_add, "rebase.z_add", 2, 0, 100, 0,			\
	    "added to z thresholds while re-baselining")		\
	X(grad_alpha, "grad.alpha", 0.97, 0, 0.99999, 0,		\
	    "EW decay of the gradient-norm baselines (global and per tensor)") \
	X(grad_warmup, "grad.warmup", 25, 3, 100000, 1,			\
	    "W: points in the median/MAD warm-up of a gradient-norm baseline") \
	X(grad_s_floor, "grad.s_floor", 0.05, 0.0001, 100, 0,		\
	    "floor of the gradient-norm baseline's scale (ln units)")	\
	X(grad_winsor, "grad.winsor", 3, 0.5, 100, 0,			\
	    "baseline updates are clamped to m +- winsor x s")		\
	X(grad_spike_z, "grad.spike_z", 6, 0, 1000, 0,			\
	    "grad_spike fires at z >= this ...")			\
	X(grad_spike_ratio, "grad.spike_ratio", 10, 1, 1e12, 0,		\
	    "... and norm/baseline >= this")				\
	X(grad_spike_resolve_z, "grad.spike_resolve_z", 3, 0, 1000, 0,	\
	    "grad_spike resolves after z < this ...")			\
	X(grad_spike_resolve_steps, "grad.spike_resolve_steps", 10, 1, 1e6, 1, \
	    "... for this many steps")					\
	X(grad_cusum_k, "grad.cusum_k", 2, 0, 1000, 0,			\
	    "allowance k of the explosion CUSUM S <- max(0, S + min(z, cap) - k)") \
	X(grad_cusum_cap, "grad.cusum_cap", 6, 0, 1000, 0,		\
	    "cap on z in the explosion CUSUM")				\
	X(grad_explosion_cusum, "grad.explosion_cusum", 12, 0, 1e6, 0,	\
	    "grad_explosion fires at S >= this with growth > 0 ...")	\
	X(grad_explosion_ratio, "grad.explosion_ratio", 10, 1, 1e12, 0, \
	    "... and norm/baseline >= this")				\
	X(grad_explosion_hard_ratio, "grad.explosion_hard_ratio", 1000, 1, 1e300, 0, \
	    "grad_explosion fires at once at norm/baseline >= this")	\
	X(grad_growth_beta, "grad.growth_beta", 0.8, 0, 0.9999, 0,	\
	    "EW decay of the growth rate r of ln(norm) per step")	\
	X(grad_overflow_ln, "grad.overflow_ln", 88.7, 1, 1000, 0,	\
	    "ln of the largest norm (88.7 float32, 11.1 float16)")	\
	X(grad_overflow_steps, "grad.overflow_steps", 20, 0, 1e6, 0,	\
	    "grad_explosion fires when the steps to overflow at rate r fall to this") \
	X(grad_spike_tail, "grad.spike_tail", 2, 1, 1e12, 0,		\
	    "... and norm/baseline >= this x the run's largest recent excursion") \
	X(tail_halflife, "tail.halflife", 2000, 1, 1e9, 0,		\
	    "steps over which a run's largest recent excursion is forgotten by half") \
	X(grad_early_growth, "grad.early_growth", 10, 1, 1e12, 0,	\
	    "before the baseline: grad_explosion (warning) once the norm grew this x ...") \
	X(grad_early_rate, "grad.early_rate", 0.3, 0, 100, 0,		\
	    "... over its lowest, growing at this EW ln rate a step")	\
	X(grad_dominant_growth, "grad.dominant_growth", 100, 1, 1e12, 0, \
	    "a tensor grown this x over its own low ...")		\
	X(grad_dominant_share, "grad.dominant_share", 0.5, 0, 1, 0,	\
	    "... carrying this share of the squared global norm: grad_explosion on it") \
	X(adam_jump, "adam.jump", 10, 1, 1e12, 0,			\
	    "instability: a tensor's Adam ratio this x its baseline ...") \
	X(adam_jump_z, "adam.jump_z", 6, 0, 1000, 0,			\
	    "... at z >= this, beyond its own recent extremes")		\
	X(grad_explosion_resolve_z, "grad.explosion_resolve_z", 2, 0, 1000, 0, \
	    "grad_explosion resolves after z < this ...")		\
	X(grad_explosion_resolve_steps, "grad.explosion_resolve_steps", 50, 1, 1e6, 1, \
	    "... for this many steps")					\
	X(grad_freeze_steps, "grad.freeze_steps", 1000, 1, 1e9, 1,	\
	    "F: after this many steps frozen by its alert, the norm baseline restarts") \
	X(loss_alpha, "loss.alpha", 0.99, 0, 0.99999, 0,		\
	    "EW decay of the loss baseline")				\
	X(loss_warmup, "loss.warmup", 50, 3, 100000, 1,			\
	    "W of the loss baseline; its median is the initial loss L_init") \
	X(loss_s_floor, "loss.s_floor", 0.01, 0.00001, 100, 0,		\
	    "floor of the loss baseline's scale (ln units; x|m| for a signed loss)") \
	X(loss_winsor, "loss.winsor", 3, 0.5, 100, 0,			\
	    "loss baseline updates are clamped to m +- winsor x s")	\
	X(loss_min_step, "loss.min_step", 150, 0, 1e9, 1,		\
	    "points before the loss z rules run (early descent is fast)") \
	X(loss_spike_z, "loss.spike_z", 6, 0, 1000, 0,			\
	    "loss_spike fires at z >= this ...")			\
	X(loss_spike_ratio, "loss.spike_ratio", 1.10, 1, 1e12, 0,	\
	    "... and loss/baseline >= this")				\
	X(loss_spike_tail, "loss.spike_tail", 2, 1, 1e12, 0,		\
	    "... and loss/baseline >= this x the run's largest recent excursion") \
	X(loss_spike_confirm, "loss.spike_confirm", 3, 1, 1000, 1,	\
	    "a loss jump is a loss_spike once it falls back halfway (in ln) within this many steps ...") \
	X(loss_plateau_steps, "loss.plateau_steps", 80, 8, 1e6, 1,	\
	    "... else, or while the spike lasts, this many steps on: still falling, a new level (re-baselined); not, divergence") \
	X(loss_resolve_z, "loss.resolve_z", 2, 0, 1000, 0,		\
	    "loss_spike resolves after z < this ...")			\
	X(loss_resolve_steps, "loss.resolve_steps", 20, 1, 1e6, 1,	\
	    "... for this many steps")					\
	X(loss_cusum_k, "loss.cusum_k", 2, 0, 1000, 0,			\
	    "allowance k of the divergence CUSUM")			\
	X(loss_cusum_cap, "loss.cusum_cap", 6, 0, 1000, 0,		\
	    "cap on z in the divergence CUSUM")				\
	X(loss_divergence_cusum, "loss.divergence_cusum", 20, 0, 1e6, 0, \
	    "divergence fires at a CUSUM >= this")			\
	X(loss_divergence_resolve_steps, "loss.divergence_resolve_steps", 100, 1, 1e9, 1, \
	    "divergence resolves after the loss level is within loss.resolve_z of its baseline this long") \
	X(loss_init_factor, "loss.init_factor", 1, 0.1, 1e6, 0,		\
	    "divergence fires when the loss level is back to this x L_init ...") \
	X(loss_init_progress, "loss.init_progress", 1.5, 1, 1e6, 0,	\
	    "... after it had fallen this many times below L_init")	\
	X(loss_level_alpha, "loss.level_alpha", 0.99, 0, 0.99999, 0,	\
	    "EW decay of the loss level compared with L_init")		\
	X(loss_linger_steps, "loss.linger_steps", 500, 1, 1e9, 1,	\
	    "a loss_spike unresolved this long becomes divergence")	\
	X(loss_freeze_steps, "loss.freeze_steps", 2000, 1, 1e9, 1,	\
	    "F of the loss baseline")					\
	X(layer_every, "layer.every", 4, 1, 1000, 1,			\
	    "tensor levels (baselines, EW means) and the rules on them run every this many steps") \
	X(vanish_alpha, "vanish.alpha", 0.99, 0, 0.99999, 0,		\
	    "EW decay of each tensor's ln(norm/sqrt(numel))")		\
	X(vanish_t_ref, "vanish.t_ref", 200, 1, 1e9, 1,			\
	    "T_ref: points before a tensor's reference level is taken (after lr warm-up)") \
	X(vanish_v1_decades, "vanish.v1_decades", 3, 0.1, 100, 0,	\
	    "V1: decades a tensor's gradient fell below its own peak")	\
	X(vanish_v2_decades, "vanish.v2_decades", 2, 0.1, 100, 0,	\
	    "V2: decades a tensor fell relative to the median tensor")	\
	X(vanish_v3_decades, "vanish.v3_decades", 3, 0.1, 100, 0,	\
	    "V3: decades the first depth quartile sits below the last (warning)") \
	X(vanish_v3_info_decades, "vanish.v3_info_decades", 2, 0.1, 100, 0, \
	    "V3 at info level")						\
	X(vanish_v3_start, "vanish.v3_start", 25, 1, 1e9, 1,		\
	    "steps before V3 (the depth profile) is evaluated")		\
	X(vanish_persist, "vanish.persist", 50, 1, 1e9, 1,		\
	    "steps V1 or V2 must hold before vanishing fires")		\
	X(vanish_resolve_decades, "vanish.resolve_decades", 1, 0, 100, 0, \
	    "vanishing resolves below this many decades ...")		\
	X(vanish_resolve_steps, "vanish.resolve_steps", 100, 1, 1e9, 1, \
	    "... for this many steps")					\
	X(vanish_critical_share, "vanish.critical_share", 0.5, 0, 1, 0, \
	    "vanishing turns critical when this share of eligible tensors fire") \
	X(vanish_min_layers, "vanish.min_layers", 4, 2, 1e6, 1,		\
	    "eligible tensors V2 and V3 need")				\
	X(clip_short, "clip.short", 200, 1, 1e9, 0,			\
	    "1/a of the short clip rate p_s")				\
	X(clip_long, "clip.long", 2000, 1, 1e9, 0,			\
	    "1/a of the long clip rate p_l")				\
	X(clip_start, "clip.start", 1000, 0, 1e9, 1,			\
	    "T_clip: clip steps before clip_saturation (warning) and clip_surge run") \
	X(clip_early_start, "clip.early_start", 200, 0, 1e9, 1,		\
	    "clip steps before the critical form of clip_saturation runs") \
	X(clip_saturation_rate, "clip.saturation_rate", 0.9, 0, 1, 0,	\
	    "clip_saturation fires at p_s >= this ...")			\
	X(clip_saturation_steps, "clip.saturation_steps", 200, 1, 1e9, 1, \
	    "... held this many steps")					\
	X(clip_critical_rate, "clip.critical_rate", 0.99, 0, 1, 0,	\
	    "clip_saturation is critical at p_s >= this ...")		\
	X(clip_critical_ratio, "clip.critical_ratio", 10, 1, 1e12, 0,	\
	    "... with clipped norms typically this many times the threshold") \
	X(clip_saturation_resolve, "clip.saturation_resolve", 0.5, 0, 1, 0, \
	    "clip_saturation resolves at p_s <= this held clip.resolve_steps") \
	X(clip_surge_rate, "clip.surge_rate", 0.2, 0, 1, 0,		\
	    "clip_surge fires at p_s >= this ...")			\
	X(clip_surge_factor, "clip.surge_factor", 5, 1, 1e6, 0,		\
	    "... and p_s >= this x p_l")				\
	X(clip_surge_resolve_factor, "clip.surge_resolve_factor", 2, 1, 1e6, 0, \
	    "clip_surge resolves at p_s <= this x p_l held clip.resolve_steps") \
	X(clip_resolve_steps, "clip.resolve_steps", 200, 1, 1e9, 1,	\
	    "steps the clip resolve conditions must hold")		\
	X(dead_steps, "dead.steps", 50, 1, 1e9, 1,			\
	    "dead_layer: present steps of an exactly zero gradient while the global norm > 0") \
	X(dead_zero, "dead.zero", 1e-30, 0, 1, 0,			\
	    "a gradient norm at or below this counts as zero")		\
	X(dead_global_steps, "dead.global_steps", 5, 1, 1e9, 1,		\
	    "no_gradient: steps of a zero global norm with a finite loss") \
	X(dead_share, "dead.share", 0.1, 0, 1, 0,			\
	    "no_gradient also fires when this share of the tensors died") \
	X(dead_resolve_steps, "dead.resolve_steps", 20, 1, 1e9, 1,	\
	    "dead_layer and no_gradient resolve after this many non-zero steps") \
	X(nonfinite_resolve_steps, "nonfinite.resolve_steps", 100, 1, 1e9, 1, \
	    "nonfinite resolves after this many finite, non-skipped steps") \
	X(scaler_window, "scaler.window", 1000, 1, 1e9, 0,		\
	    "1/a of the EW rate of loss-scaler overflow (skipped) steps") \
	X(scaler_start, "scaler.start", 200, 0, 1e9, 1,			\
	    "steps before the overflow rate is judged (start-up bursts are normal)") \
	X(scaler_rate_warning, "scaler.rate_warning", 0.05, 0, 1, 0,	\
	    "nonfinite on loss_scale (warning) above this overflow rate") \
	X(scaler_rate_critical, "scaler.rate_critical", 0.25, 0, 1, 0,	\
	    "... critical above this rate")				\
	X(scaler_min_scale, "scaler.min_scale", 1, 0, 1e30, 0,		\
	    "a skipped step at a loss scale at or below this is a collapse (critical)") \
	X(scaler_collapse_skips, "scaler.collapse_skips", 3, 1, 1e9, 1,	\
	    "... as are this many skipped steps in a row with a non-finite loss") \
	X(scaler_resolve_steps, "scaler.resolve_steps", 100, 1, 1e9, 1,	\
	    "the loss-scale alert resolves after this many clean steps")	\
	X(stall_alpha, "stall.alpha", 0.05, 0.0001, 1, 0,		\
	    "EW weight of the ln step interval")			\
	X(stall_factor, "stall.factor", 10, 1, 1e6, 0,			\
	    "stall fires after this many typical intervals without a new step ...") \
	X(stall_min_seconds, "stall.min_seconds", 120, 0, 1e9, 0,	\
	    "... but never before this many seconds ...")		\
	X(stall_max_seconds, "stall.max_seconds", 7200, 0, 1e9, 0,	\
	    "... and always after this many")				\
	X(stall_critical_factor, "stall.critical_factor", 3, 1, 1e6, 0,	\
	    "a stall turns critical at this x its deadline")		\
	X(stall_min_steps, "stall.min_steps", 5, 2, 1e9, 1,		\
	    "steps a run needs before it has a rhythm to miss")

struct detector_config {
#define DETECTOR_CONFIG_FIELD(f, n, def, lo, hi, i, h)	double f;
	DETECTOR_CONFIG_TABLE(DETECTOR_CONFIG_FIELD)
#undef DETECTOR_CONFIG_FIELD
};

/*
 * Apply a run's overrides: meta_json is the run's meta (a JSON object);
 * its "detector" object's members are set on cfg by name.  Returns the
 * number applied; unknown names and bad values are skipped.
 */
int	detector_config_apply_meta(struct detector_config *cfg,
	    const char *meta_json);

/*
 * Apply a run's overrides: meta_json is the run's meta (a JSON object);
 * its "detector" object's members are set on cfg by name.  Returns the
 * number applied; unknown names and bad values are skipped.
 */
int	detector_config_apply_meta(struct detector_config *cfg,
	    const char *meta_json);

/* The series of the loss scaler's alert (kind nonfinite). */
#define DETECTOR_SCALER_SERIES	"loss_scale"

/* One (run, kind, series) key's lifecycle. */
struct alert {
	uint8_t		 firing;
	uint8_t		 severity;
	uint8_t		 last_severity;	/* of the last firing that resolved */
	uint8_t		 cycles;	/* firings in the flap window */
	uint32_t	 ok;		/* evaluations in a row past the resolve limit */
	uint32_t	 count;		/* bad steps while firing (nonfinite) */
	int64_t		 onset_step;
	int64_t		 fire_step;
	int64_t		 resolved_step;	/* -1: never resolved */
	int64_t		 window_start;	/* of the flap window; -1 */
	double		 peak;		/* worst ratio (or gap) while firing */
};

/*
 * One parameter tensor of a run.  Every step touches the fields up to
 * the alerts for each tensor, so they come first and together (a few
 * cache lines); the rest is read when a rule fires or resolves.
 */
struct layer {
	/* Hot: read or written for every gradient value. */
	struct baseline	 base;		/* ln g: attribution */
	struct ewmean	 ybar;		/* ln(g / sqrt(numel)), slow EW */
	struct ewmean	 yfast;		/* ln(g / sqrt(numel)), fast EW */
	double		 half_ln_numel;	/* 0.5 ln numel; 0 when unknown */
	double		 last;		/* last value seen, any */
	int64_t		 z_step;	/* of last, when finite and > 0 */
	int64_t		 fall_since;	/* fast level a decade under the slow; -1 */
	double		 fall_from;	/* the slow level then */
	double		 ylow;		/* lowest slow level (ybar) once settled */
	int64_t		 first_step;	/* of a gradient > 0; -1 */
	uint32_t	 ngrad;		/* gradient values seen (finite or not) */
	uint32_t	 zero_run;	/* present steps in a row at zero */
	uint32_t	 nonzero_run;
	uint8_t		 ever_nonzero;
	uint8_t		 died;		/* counted in run->ndied */
	uint8_t		 has_ref;	/* V1/V2 references taken */
	uint8_t		 eligible;	/* takes part in the vanishing rules */
	/* Hot while the vanishing rules run (every vanish.every steps). */
	double		 ymax;		/* V1: running max of ybar after T_ref */
	double		 uref;		/* V2: ybar - median at T_ref */
	double		 c1, c2, c3;	/* V1, V2, V3 deficits (ln units) */
	int		 sev;		/* this step's grade; -1 none */
	uint32_t	 v_bad;		/* steps V1 or V2 held, in a row */
	/* Cold: alerts and what only messages read. */
	struct alert	 al_van;
	struct alert	 al_dead;
	struct alert	 al_never;	/* requires a gradient, never got one */
	struct alert	 al_dom;	/* grown by decades, carrying the norm */
	struct alert	 al_adam;	/* Adam's ratio jumped */
	int64_t		 v_onset;
	int64_t		 zero_since;
	int64_t		 nonzero_since;
	int64_t		 ylow_step;
	char		*name;
	uint64_t	 hash;
	int64_t		 depth;		/* from meta.layers; -1 unknown */
	uint32_t	 order;		/* rank of first sight in the run */
	uint32_t	 adam_ok;	/* calm steps in a row while firing */
	struct baseline	 adam;		/* ln of Adam's ratio */
	double		 adam_tail;	/* its largest recent jump, decaying */
};

/*
 * A pattern: the one alert that the tensors of a kind firing together
 * make (its series is the first tensor's name, its detail lists them
 * all).  Each tensor keeps its own struct alert, which never makes an
 * event by itself.
 */
struct group {
	struct alert	 al;
	char		*leader;	/* the first tensor's name; owned */
	char		*first_msg;	/* its message when it fired; owned */
	uint32_t	 members;	/* member alerts firing */
};

/* A tensor's firing alert, kept while its run is evicted (detector_evict.c). */
struct kept_alert {
	char		*name;		/* the tensor's; owned */
	enum alert_kind	 kind;
	struct alert	 al;
};

/*
 * One run's state: O(1) per series plus its tensors.  An evicted run has
 * no tensors (layers, lhash and byorder are empty) and keeps their firing
 * alerts in kept; the rest is whole, so the stall timer goes on.
 */
struct run {
	struct run	*next;		/* hash chain */
	int64_t		 id;
	const struct detector_config *cfg;	/* own, or the detector's */
	struct detector_config *own;	/* the run's overrides, or NULL */
	int64_t		 last_step;	/* -1 before the first */
	int64_t		 first_step;	/* -1 before the first */
	uint64_t	 nsteps;
	uint64_t	 nskipped;

	struct layer	**layers;
	uint32_t	 nlayers;
	uint32_t	 caplayers;
	uint32_t	 nunseen;	/* tensors without a gradient value yet */
	uint32_t	*lhash;		/* open addressing: index + 1; 0 empty */
	uint32_t	 lhash_cap;
	uint32_t	*byorder;	/* eligible tensors, input side first */
	uint32_t	 nbyorder;
	int		 order_dirty;
	uint32_t	 ndied;

	double		 lr;		/* last positive lr; 0 none */
	int64_t		 nlr;
	int64_t		 rebase_until;	/* re-baselining through this step */
	int		 lr_rising;
	int		 warmup_over;	/* no lr warm-up under way */

	struct baseline	 gbase;		/* ln global norm */
	struct cusum	 gcusum;
	double		 gr;		/* growth of ln norm per step */
	double		 gprev;		/* previous ln norm; NaN */
	double		 gy_onset;	/* ln norm where the CUSUM left 0 */
	double		 gmin;		/* lowest ln norm seen; +Inf */
	int64_t		 gmin_step;	/* ... and its step */
	double		 gtail;		/* largest recent ln(norm/baseline), decaying */
	double		 gdev_prev;	/* the previous step's ln(norm/baseline) */
	uint64_t	 ngrad;
	uint32_t	 gfrozen;
	double		 glast;
	int64_t		 glast_step;
	int64_t		 explosion_fire;	/* last grad_explosion; -1 */
	uint32_t	 zero_global;
	int64_t		 zero_global_since;

	struct baseline	 lbase;		/* ln loss (raw once it went <= 0) */
	struct cusum	 lcusum;
	int		 lraw;
	double		 linit;		/* L_init in the baseline's domain */
	struct ewmean	 llevel;	/* unfrozen loss level */
	double		 lmin;		/* lowest level since L_init */
	double		 ltail;		/* largest recent ln(loss/baseline), decaying */
	double		 ltrend;	/* EW change of ln loss a step */
	double		 lprev;		/* previous ln loss; NaN */
	int64_t		 ljump;		/* a loss jump under watch; -1 */
	double		 ljump_dev;	/* its ln(loss / baseline) */
	double		 ljump_loss;	/* its loss, ratio and z, for the message */
	double		 ljump_ratio;
	double		 ljump_z;
	int		 ljump_open;	/* not yet a spike, nor a new level */
	double		 lplat[2][3];	/* n, sum, sum of squares of ln loss,
					   3rd and 4th quarter of the watch */
	uint64_t	 nloss;
	uint32_t	 lfrozen;
	double		 llast;
	int64_t		 llast_step;

	struct ewmean	 ps;		/* short clip rate */
	struct ewmean	 pl;		/* long clip rate */
	struct ewmean	 kappa;		/* EW ln(pre/max) of clipped steps */
	double		 kappa_ref;	/* kappa at the last 500-step mark */
	double		 kappa_prev;	/* ... and the one before */
	uint32_t	 kappa_n;
	uint64_t	 nclip;
	uint32_t	 sat_run;
	int64_t		 sat_since;

	double		 last_advance;	/* now when a new step last came */
	double		 last_time;	/* that step's time */
	double		 last_batch;	/* now of the last batch with new steps */
	struct ewmean	 dt_step;	/* EW ln seconds between steps */
	struct ewmean	 dt_batch;	/* EW ln seconds between batches */

	double		 ovf_rate;	/* EW rate of skipped steps, from 0 */
	uint64_t	 nscaler;	/* steps that said whether they skipped */
	uint32_t	 skip_run;	/* skipped steps in a row */
	uint32_t	 skip_nan_run;	/* ... of them with a non-finite loss */
	int64_t		 skip_since;
	struct alert	 al_scaler;	/* nonfinite on "loss_scale" */

	struct alert	 al[ALERT_KIND_COUNT];	/* the run-level alerts */
	struct group	 grp[ALERT_KIND_COUNT];	/* the tensor-level patterns */
	uint32_t	 never_checked;	/* steps when never-active was last checked */

	int		 evicted;	/* quiet: its tensors were freed */
	struct kept_alert *kept;	/* their firing alerts, while evicted */
	size_t		 nkept;
};

/* A series of the batch being fed, in step order. */
struct detector_view {
	const int64_t	*steps;
	const double	*values;
	size_t		 n;
	int64_t		*own_steps;	/* a sorted copy, or NULL */
	double		*own_values;
	uint32_t	 layer;		/* the tensor's index in the run */
};

struct detector {
	const struct detector_config *cfg;
	struct run	**bucket;
	size_t		 nbucket;	/* a power of two */
	size_t		 nrun;

	/* The call under way. */
	struct detector_events *out;
	int		 replay;
	double		 now;

	/* Scratch, kept between batches: nothing is allocated per point. */
	size_t		 capseries;
	size_t		*cur;		/* per series: cursor */
	uint32_t	*slot;		/* the batch's layer series */
	struct detector_view *view;
	uint32_t	*lslot;		/* this step's tensors ... */
	double		*lval;		/* ... and values */
	uint32_t	*aslot;		/* the batch's Adam-ratio series */
	uint32_t	*alslot;	/* this step's tensors with one ... */
	double		*alval;		/* ... and their ratios */
	int64_t		*steps;
	size_t		 capsteps;
	double		*tmp;		/* medians */
	size_t		 captmp;
	void		**sorted;	/* sorted copies to free */
	size_t		 nsorted;
};

/* One step's values (the tensors are in d->lslot, d->lval). */
struct detector_step {
	int64_t		 step;
	unsigned	 has;		/* 1 << series_kind of present scalars */
	double		 loss;
	double		 grad;
	double		 lr;
	double		 cpre;
	double		 cmax;
	double		 loss_scale;
	double		 skipped;
	double		 time;
	size_t		 nl;		/* tensors present */
	size_t		 na;		/* Adam ratios present (d->alslot, alval) */
	size_t		 nnonfinite;	/* ... of them NaN or Inf */
	size_t		 npositive;	/* ... of them > 0 */
};

/* What a rule saw, for its message. */
struct detector_grad_eval {
	int64_t		 step;
	int64_t		 onset;
	double		 g, y, m, s, z, ratio, r, cusum, to_overflow, zth;
	int		 by_cusum, by_ratio, by_overflow;
	int		 early;		/* before the baseline: growth over the lowest */
};

struct detector_loss_eval {
	int64_t		 step;
	int64_t		 onset;
	double		 loss, y, m, s, z, ratio, cusum, linit, level, zth;
	int		 raw, by_cusum, by_init, by_linger, by_plateau;
};

struct detector_vanish_eval {
	const struct layer *l;
	double		 med;		/* median tensor level */
	double		 qlast;		/* median of the last depth quartile */
	double		 dq;		/* first - last quartile */
	uint32_t	 n;		/* tensors with a level */
	uint32_t	 nfiring;	/* non-zero when turning critical */
};

/* An event's payload; message and detail are allocated, then owned by the event. */
struct detector_report {
	double		 value;
	double		 baseline;
	double		 threshold;
	char		*message;
	char		*detail;
};

/* detector.c: the lifecycle of one alert key. */
/* 1 if al may fire now at sev: not replaying, not firing, not cooling down. */
int	detector_alert_may_fire(const struct detector *, const struct run *,
	    const struct alert *, enum alert_kind, enum alert_severity,
	    int64_t step);
/* Fire al (the event takes rep's strings). */
void	detector_alert_fire(struct detector *, struct run *, struct alert *,
	    enum alert_kind, const char *series, enum alert_severity,
	    int64_t onset, int64_t step, const struct detector_report *rep);
/* A firing alert changed (severity up); frees rep's strings otherwise. */
void	detector_alert_update(struct detector *, struct run *, struct alert *,
	    enum alert_kind, const char *series, enum alert_severity,
	    const struct detector_report *rep);
/* End a firing alert; takes message and detail (freed when not firing). */
void	detector_alert_resolve(struct detector *, struct run *, struct alert *,
	    enum alert_kind, const char *series, int64_t step, char *message,
	    char *detail);
/* Count one evaluation with the resolve condition ok; 1 when it held long enough. */
int	detector_alert_settled(const struct run *, struct alert *, int ok,
	    double steps);
/* 1 if al fires and the point at step must not move its baseline. */
int	detector_alert_freezes(const struct alert *, int64_t step);

/*
 * detector_group.c: tensor alerts as patterns.  The member calls keep
 * the tensor's own alert (detector_layer_alert()) and make the events of
 * its kind's one alert for the run: the first member fires it, the
 * others update it (tensors listed), the last to resolve resolves it.
 * The report's strings are taken.
 */
struct alert	*detector_layer_alert(struct layer *, enum alert_kind);
void	detector_member_fire(struct detector *, struct run *, struct layer *,
	    enum alert_kind, enum alert_severity, int64_t onset, int64_t step,
	    struct detector_report *);
void	detector_member_update(struct detector *, struct run *, struct layer *,
	    enum alert_kind, enum alert_severity, struct detector_report *);
void	detector_member_resolve(struct detector *, struct run *,
	    struct layer *, enum alert_kind, int64_t step, char *message);
/* A restored pattern (after a restart): its leader's alert fires. */
void	detector_group_restore(struct run *, struct layer *, enum alert_kind,
	    enum alert_severity, int64_t onset, int64_t fire);
void	detector_group_cleanup(struct group *);
/* Arm al as firing at sev (the lifecycle's bookkeeping, no event). */
void	detector_alert_arm(const struct run *, struct alert *,
	    enum alert_severity, int64_t onset, int64_t step, double value);
/* Disarm al as resolved at step (no event). */
void	detector_alert_disarm(struct alert *, int64_t step);
/* The event for group or run alert al (series: "" or a name). */
struct detector_event *detector_event_of(struct detector *, struct run *,
	    enum detector_event_type, enum alert_kind, const char *series,
	    const struct alert *);

/*
 * detector.c: runs and tensors.  A run made by detector_run_new() is in
 * no table until the caller puts it there; detector_run_free() frees its
 * tensors and kept alerts too.
 */
struct run	*detector_run_new(struct detector *, int64_t id);
void		 detector_run_free(struct run *);
/* The run of id in d's table, or NULL. */
struct run	*detector_run_find(struct detector *, int64_t id);
/* Index of tensor name in r, adding it when absent (r->layers may move). */
uint32_t	 detector_layer_get(struct run *, const char *name);
void		 detector_layer_free(struct layer *);
/* detector_feed() on the run r itself (in d's table or not). */
void		 detector_feed_run(struct detector *, struct run *,
		    const struct batch *, double now, int replay,
		    struct detector_events *);

/* Sort r->byorder: the eligible tensors from the input side to the output. */
void	detector_run_order(struct run *);

/* detector_rules.c: every rule, for one new step of run r. */
/* detector_rules_tensor.c: the rules about tensors, for one step. */
void	detector_layers(struct detector *, struct run *,
	    const struct detector_step *);
void	detector_no_gradient(struct detector *, struct run *,
	    const struct detector_step *);
void	detector_never_active(struct detector *, struct run *,
	    const struct detector_step *);
void	detector_vanishing(struct detector *, struct run *,
	    const struct detector_step *);
void	detector_adam(struct detector *, struct run *,
	    const struct detector_step *);

/* Whether the step x carries a value of kind k. */
static inline int
detector_has(const struct detector_step *x, enum series_kind k)
{
	return (x->has >> k) & 1;
}

/* Whether step is inside the loss's re-baselining after a new level. */
static inline int
detector_rebasing(const struct run *r, int64_t step)
{
	return step <= r->rebase_until;
}

void	detector_rules_step(struct detector *, struct run *,
	    const struct detector_step *);

/* detector_msg.c: each fills rep (or returns a string) for a person. */
void	detector_msg_nonfinite(const struct detector *, const struct run *,
	    const struct detector_step *, struct detector_report *);
void	detector_msg_explosion(const struct detector *, const struct run *,
	    const struct detector_grad_eval *, struct detector_report *);
void	detector_msg_spike(const struct detector *, const struct run *,
	    const struct detector_grad_eval *, struct detector_report *);
void	detector_msg_divergence(const struct detector *, const struct run *,
	    const struct detector_loss_eval *, struct detector_report *);
void	detector_msg_loss_spike(const struct detector *, const struct run *,
	    const struct detector_loss_eval *, struct detector_report *);
void	detector_msg_vanishing(const struct detector *, const struct run *,
	    const struct detector_vanish_eval *, struct detector_report *);
void	detector_msg_dead(const struct detector *, const struct run *,
	    const struct layer *, const struct detector_step *,
	    struct detector_report *);
void	detector_msg_no_gradient(const struct detector *, const struct run *,
	    const struct detector_step *, int by_global,
	    struct detector_report *);
void	detector_msg_dominant(const struct run *, const struct layer *,
	    const struct detector_step *, double grown, double share,
	    struct detector_report *);
void	detector_msg_never(const struct run *, const struct layer *,
	    const struct detector_step *, struct detector_report *);
void	detector_msg_instability(const struct run *, const struct layer *,
	    const struct detector_step *, double ratio, double jump, double z,
	    struct detector_report *);
void	detector_msg_clip(const struct detector *, const struct run *,
	    const struct detector_step *, enum alert_kind, int critical,
	    struct detector_report *);
void	detector_msg_stall(const struct run *, double gap, double typical,
	    double deadline, enum alert_severity, struct detector_report *);
void	detector_msg_scaler(const struct run *, const struct detector_step *,
	    int collapse, struct detector_report *);
char	*detector_msg_stall_end(const struct run *, const struct alert *,
	    int64_t step, double now);
/* "kind on series resolved at step after N steps (peak ...): outcome step". */
char	*detector_msg_resolved(const struct run *, const struct alert *,
	    enum alert_kind, const char *series, int64_t step,
	    const char *outcome);
char	*detector_msg_superseded(const struct run *, const struct alert *,
	    enum alert_kind, enum alert_kind by, int64_t step);
/* {"lead_steps": ..} for an explosion the NaN at step superseded. */
char	*detector_detail_lead(const struct alert *, int64_t step);
/*
 * A pattern's message and detail: the kind, the tensors (n of total
 * listed), the first one's message; detail gains "tensors" and
 * "tensor_count" (detail may be NULL).
 */
char	*detector_msg_group(enum alert_kind, const char *first_msg,
	    const char *const *names, size_t n, size_t total);
char	*detector_detail_group(const char *detail, const char *const *names,
	    size_t n, size_t total);

/*
 * Layer order for reports and the heatmap: known depths first, in
 * order; then the rest by first sight.  A qsort-style result.
 */
static inline int
detector_depth_cmp(int64_t depth_a, uint32_t order_a, int64_t depth_b,
    uint32_t order_b)
{
	int64_t	da = depth_a >= 0 ? depth_a : INT64_MAX;
	int64_t	db = depth_b >= 0 ? depth_b : INT64_MAX;

	if (da != db)
		return da < db ? -1 : 1;
	return order_a < order_b ? -1 : order_a > order_b;
}

#endif
