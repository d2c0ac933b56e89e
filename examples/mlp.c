/* SPDX-License-Identifier: MIT */
/*
 * mlp: a small multilayer perceptron trained with mini-batch SGD (with
 * optional momentum and a warm-up) on a Gaussian-mixture classification
 * task it generates itself; forward and backward passes in plain C,
 * softmax cross-entropy.
 * It logs every step to gradwatchd through libgradwatch, and its flags
 * make training fail the ways gradwatch watches for (see usage()).
 * Single-threaded: the library's sender is the only other thread.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gradwatch.h"

#define MLP_INPUTS	20	/* input features */
#define MLP_CLASSES	5
#define MLP_MODES	3	/* Gaussian blobs per class */
#define MLP_SPREAD	1.0	/* std of the blob centres */
#define MLP_NOISE	0.9	/* std of a sample around its centre */
#define MLP_EVAL_N	1000	/* held-out samples */
#define MLP_MAX_ALERTS	8

enum act { ACT_RELU, ACT_TANH, ACT_SIGMOID };
static const char *const act_names[] = { "relu", "tanh", "sigmoid" };

/* What the command line asked for. */
struct opts {
	int64_t		 steps;
	int64_t		 nan_at;	/* -1: no injection */
	double		 lr;
	double		 momentum;
	double		 clip;		/* <= 0: no clipping */
	double		 init_scale;	/* multiplies the He/Xavier std */
	int64_t		 warmup;	/* steps of linear lr warm-up */
	int		 batch;
	int		 depth;		/* linear layers */
	int		 width;
	enum act	 act;
	uint64_t	 seed;
	const char	*run;
	const char	*project;
	const char	*url;
	int		 step_ms;
	int		 close_ms;	/* gw_close's timeout at exit */
	int		 print_every;
	int		 weight_every;
	int		 eval_every;
	int		 stop_on_critical;
	int		 quiet;
	int		 gradcheck;
};

/* A splitmix64 generator: a seed gives the same run every time. */
struct rng {
	uint64_t	 s;
	int		 has_spare;
	double		 spare;
};

/* The generated task: MLP_MODES Gaussian blobs per class. */
struct task {
	double		 center[MLP_CLASSES * MLP_MODES][MLP_INPUTS];
};

/*
 * The network: depth linear layers, dim[0] inputs, dim[depth] logits,
 * an activation after every layer but the last.  Parameters, gradients
 * and momenta are flat arrays; layer l's weight (dim[l+1] x dim[l], row
 * major) starts at woff[l] and its bias at boff[l].  Activations are
 * kept for up to maxbatch samples for the backward pass.
 */
struct net {
	int		 depth;
	enum act	 act;
	int		 maxbatch;
	int		*dim;
	size_t		*woff;
	size_t		*boff;
	size_t		 nparams;
	double		*param;
	double		*grad;
	double		*vel;
	double		**z;		/* [l]: pre-activations of layer l */
	double		**a;		/* [0]: input, [l+1]: output of layer l */
	double		*dz;		/* scratch, maxbatch x widest */
	double		*da;
	double		*prob;		/* softmax of the logits */
};

static double
rng_uniform(struct rng *r)
{
	uint64_t	 x;

	x = (r->s += 0x9e3779b97f4a7c15ULL);
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return ((x >> 11) + 0.5) * (1.0 / 9007199254740992.0);	/* (0, 1) */
}

static double
rng_normal(struct rng *r)
{
	double	 u, v;

	if (r->has_spare) {
		r->has_spare = 0;
		return r->spare;
	}
	u = sqrt(-2.0 * log(rng_uniform(r)));
	v = 2.0 * M_PI * rng_uniform(r);
	r->spare = u * sin(v);
	r->has_spare = 1;
	return u * cos(v);
}

static void
rng_init(struct rng *r, uint64_t seed, uint64_t stream)
{
	r->s = seed * 0x2545f4914f6cdd1dULL + stream * 0x9e3779b97f4a7c15ULL;
	r->has_spare = 0;
}

static void
task_init(struct task *t, struct rng *r)
{
	int	 c, i;

	for (c = 0; c < MLP_CLASSES * MLP_MODES; c++)
		for (i = 0; i < MLP_INPUTS; i++)
			t->center[c][i] = MLP_SPREAD * rng_normal(r);
}

/* Draw n samples: x is n x MLP_INPUTS, y their classes. */
static void
task_sample(const struct task *t, struct rng *r, double *x, int *y, int n)
{
	int	 k, i, blob;

	for (k = 0; k < n; k++) {
		blob = (int)(rng_uniform(r) * MLP_CLASSES * MLP_MODES);
		y[k] = blob % MLP_CLASSES;
		for (i = 0; i < MLP_INPUTS; i++)
			x[k * MLP_INPUTS + i] = t->center[blob][i] +
			    MLP_NOISE * rng_normal(r);
	}
}

static void
net_free(struct net *n)
{
	int	 l;

	if (n == NULL)
		return;
	for (l = 0; l <= n->depth; l++) {
		if (n->z != NULL && l < n->depth)
			free(n->z[l]);
		if (n->a != NULL)
			free(n->a[l]);
	}
	free(n->z);
	free(n->a);
	free(n->dim);
	free(n->woff);
	free(n->boff);
	free(n->param);
	free(n->grad);
	free(n->vel);
	free(n->dz);
	free(n->da);
	free(n->prob);
	free(n);
}

/*
 * A network of depth layers, width wide, for up to maxbatch samples,
 * with zero biases and weights drawn from N(0, std^2), std = scale *
 * sqrt(gain / fan_in) (He's gain 2 for ReLU, else Xavier's 1); NULL
 * when out of memory.
 */
static struct net *
net_new(int depth, int width, enum act act, double scale, int maxbatch,
    struct rng *r)
{
	struct net	*n;
	size_t		 off = 0, widest = MLP_INPUTS, k;
	double		 std;
	int		 l;

	if ((n = calloc(1, sizeof *n)) == NULL)
		return NULL;
	n->depth = depth;
	n->act = act;
	n->maxbatch = maxbatch;
	n->dim = calloc(depth + 1, sizeof *n->dim);
	n->woff = calloc(depth, sizeof *n->woff);
	n->boff = calloc(depth, sizeof *n->boff);
	n->z = calloc(depth, sizeof *n->z);
	n->a = calloc(depth + 1, sizeof *n->a);
	if (!n->dim || !n->woff || !n->boff || !n->z || !n->a)
		goto fail;
	for (l = 0; l <= depth; l++)
		n->dim[l] = l == 0 ? MLP_INPUTS : l == depth ? MLP_CLASSES :
		    width;
	for (l = 0; l < depth; l++) {
		n->woff[l] = off;
		off += (size_t)n->dim[l + 1] * n->dim[l];
		n->boff[l] = off;
		off += n->dim[l + 1];
		if ((size_t)n->dim[l + 1] > widest)
			widest = n->dim[l + 1];
	}
	n->nparams = off;
	n->param = calloc(off, sizeof *n->param);
	n->grad = calloc(off, sizeof *n->grad);
	n->vel = calloc(off, sizeof *n->vel);
	n->dz = calloc(maxbatch * widest, sizeof *n->dz);
	n->da = calloc(maxbatch * widest, sizeof *n->da);
	n->prob = calloc(maxbatch * MLP_CLASSES, sizeof *n->prob);
	if (!n->param || !n->grad || !n->vel || !n->dz || !n->da || !n->prob)
		goto fail;
	for (l = 0; l <= depth; l++)
		if ((n->a[l] = calloc(maxbatch * n->dim[l], sizeof **n->a)) ==
		    NULL)
			goto fail;
	for (l = 0; l < depth; l++) {
		if ((n->z[l] = calloc(maxbatch * n->dim[l + 1],
		    sizeof **n->z)) == NULL)
			goto fail;
		std = scale * sqrt((act == ACT_RELU ? 2.0 : 1.0) / n->dim[l]);
		for (k = 0; k < (size_t)n->dim[l + 1] * n->dim[l]; k++)
			n->param[n->woff[l] + k] = std * rng_normal(r);
	}
	return n;

fail:
	net_free(n);
	return NULL;
}

static double
act_apply(enum act act, double z)
{
	switch (act) {
	case ACT_RELU:
		return z < 0 ? 0 : z;	/* NaN stays NaN, as in the frameworks */
	case ACT_TANH:
		return tanh(z);
	default:
		return 1 / (1 + exp(-z));
	}
}

/* The activation's derivative at pre-activation z with output a. */
static double
act_deriv(enum act act, double z, double a)
{
	switch (act) {
	case ACT_RELU:
		return z > 0 ? 1 : 0;
	case ACT_TANH:
		return 1 - a * a;
	default:
		return a * (1 - a);
	}
}

/* out (nb x o) = in (nb x i) W^T + b, with W o x i row major. */
static void
linear_forward(const double *w, const double *b, const double *in,
    double *out, int nb, int ni, int no)
{
	int	 k, o, i;
	double	 s;

	for (k = 0; k < nb; k++)
		for (o = 0; o < no; o++) {
			s = b[o];
			for (i = 0; i < ni; i++)
				s += in[k * ni + i] * w[o * ni + i];
			out[k * no + o] = s;
		}
}

/*
 * Forward nb samples x (nb x MLP_INPUTS) with labels y; returns the mean
 * cross-entropy and sets *correct to the number classified right.  A
 * NaN anywhere in x makes the loss NaN, as it would in any framework.
 */
static double
net_forward(struct net *n, const double *x, const int *y, int nb,
    int *correct)
{
	double	*z, *p, m, sum, loss = 0;
	int	 l, k, c, best, nc = MLP_CLASSES;
	size_t	 j, len;

	memcpy(n->a[0], x, (size_t)nb * MLP_INPUTS * sizeof *x);
	for (l = 0; l < n->depth; l++) {
		linear_forward(n->param + n->woff[l], n->param + n->boff[l],
		    n->a[l], n->z[l], nb, n->dim[l], n->dim[l + 1]);
		len = (size_t)nb * n->dim[l + 1];
		for (j = 0; j < len; j++)
			n->a[l + 1][j] = l == n->depth - 1 ? n->z[l][j] :
			    act_apply(n->act, n->z[l][j]);
	}
	*correct = 0;
	for (k = 0; k < nb; k++) {
		z = n->a[n->depth] + k * nc;
		p = n->prob + k * nc;
		m = z[0];
		best = 0;
		for (c = 1; c < nc; c++)
			if (z[c] > m) {
				m = z[c];
				best = c;
			}
		sum = 0;
		for (c = 0; c < nc; c++)
			sum += (p[c] = exp(z[c] - m));
		for (c = 0; c < nc; c++)
			p[c] /= sum;
		loss += log(sum) - (z[y[k]] - m);
		*correct += best == y[k];
	}
	return loss / nb;
}

/* Gradients of the mean loss of the last forward pass, into n->grad. */
static void
net_backward(struct net *n, const int *y, int nb)
{
	double	*dz = n->dz, *da = n->da, *t, *gw, *gb;
	const double *w, *in;
	int	 l, k, o, i, ni, no;

	memset(n->grad, 0, n->nparams * sizeof *n->grad);
	for (k = 0; k < nb; k++)
		for (o = 0; o < MLP_CLASSES; o++)
			dz[k * MLP_CLASSES + o] = (n->prob[k * MLP_CLASSES + o] -
			    (o == y[k])) / nb;
	for (l = n->depth - 1; l >= 0; l--) {
		ni = n->dim[l];
		no = n->dim[l + 1];
		w = n->param + n->woff[l];
		gw = n->grad + n->woff[l];
		gb = n->grad + n->boff[l];
		in = n->a[l];
		for (k = 0; k < nb; k++)
			for (o = 0; o < no; o++) {
				gb[o] += dz[k * no + o];
				for (i = 0; i < ni; i++)
					gw[o * ni + i] += dz[k * no + o] *
					    in[k * ni + i];
			}
		if (l == 0)
			break;
		memset(da, 0, (size_t)nb * ni * sizeof *da);
		for (k = 0; k < nb; k++)
			for (o = 0; o < no; o++)
				for (i = 0; i < ni; i++)
					da[k * ni + i] += dz[k * no + o] *
					    w[o * ni + i];
		for (k = 0; k < nb * ni; k++)
			da[k] *= act_deriv(n->act, n->z[l - 1][k], in[k]);
		t = dz;
		dz = da;
		da = t;
	}
}

/* The L2 norm of v[0..len). */
static double
norm2(const double *v, size_t len)
{
	double	 s = 0;
	size_t	 i;

	for (i = 0; i < len; i++)
		s += v[i] * v[i];
	return sqrt(s);
}

static size_t
net_wlen(const struct net *n, int l)
{
	return (size_t)n->dim[l + 1] * n->dim[l];
}

/* One SGD step with momentum (PyTorch's form: v = mu v + g, p -= lr v). */
static void
net_update(struct net *n, double lr, double mu)
{
	size_t	 j;

	for (j = 0; j < n->nparams; j++) {
		n->vel[j] = mu * n->vel[j] + n->grad[j];
		n->param[j] -= lr * n->vel[j];
	}
}

/*
 * Compare the backward pass with central differences on every parameter
 * of a small network with activation act; prints the largest error and
 * returns 0 if it is within tolerance, else -1.
 */
static int
gradcheck_act(enum act act, uint64_t seed)
{
	const int	 nb = 8;
	const double	 h = 1e-5, tol = 1e-6;
	double		 x[8 * MLP_INPUTS], saved, up, down, num, ana, err;
	double		 worst = 0;
	int		 y[8], correct, rc = -1;
	size_t		 j, wj = 0;
	struct task	 task;
	struct rng	 r;
	struct net	*n;

	rng_init(&r, seed, 7);
	task_init(&task, &r);
	task_sample(&task, &r, x, y, nb);
	if ((n = net_new(3, 7, act, 1.0, nb, &r)) == NULL) {
		fprintf(stderr, "mlp: out of memory\n");
		return -1;
	}
	for (j = 0; j < n->nparams; j++)	/* biases too, off zero */
		n->param[j] += 0.1 * rng_normal(&r);
	net_forward(n, x, y, nb, &correct);
	net_backward(n, y, nb);
	for (j = 0; j < n->nparams; j++) {
		saved = n->param[j];
		n->param[j] = saved + h;
		up = net_forward(n, x, y, nb, &correct);
		n->param[j] = saved - h;
		down = net_forward(n, x, y, nb, &correct);
		n->param[j] = saved;
		num = (up - down) / (2 * h);
		ana = n->grad[j];
		err = fabs(num - ana) / fmax(1e-3, fabs(num) + fabs(ana));
		if (!(err <= worst)) {	/* NaN counts as worst */
			worst = err;
			wj = j;
		}
	}
	if (worst <= tol)
		rc = 0;
	printf("gradcheck %-7s %zu parameters, largest relative error "
	    "%.2e (parameter %zu): %s\n", act_names[act], n->nparams, worst,
	    wj, rc == 0 ? "ok" : "FAILED");
	net_free(n);
	return rc;
}

static int
gradcheck(uint64_t seed)
{
	int	 a, rc = 0;

	for (a = ACT_RELU; a <= ACT_SIGMOID; a++)
		if (gradcheck_act(a, seed) == -1)
			rc = -1;
	return rc;
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: mlp [-hq] [--steps N] [--lr X] [--warmup N] [--momentum X]\n"
"           [--batch N] [--depth N] [--width N] [--act relu|tanh|sigmoid]\n"
"           [--init-scale small|normal|large|X] [--clip X] [--nan-at STEP]\n"
"           [--seed N] [--run NAME] [--project NAME] [--url URL]\n"
"           [--stop-on-critical] [--step-ms MS] [--close-ms MS]\n"
"           [--print-every N]"
" [--weight-every N] [--eval-every N] [--gradcheck]\n"
"\n"
"Trains a multilayer perceptron with SGD on a generated Gaussian-mixture\n"
"classification task (%d inputs, %d classes) and logs every step to\n"
"gradwatchd ($GRADWATCH_URL, else http://127.0.0.1:7070).  Training never\n"
"needs the daemon: without it, it runs the same.\n"
"\n"
"  --steps N            training steps (default 500)\n"
"  --lr X               learning rate (default 0.1; 2 explodes)\n"
"  --warmup N           raise the lr linearly over N steps (default 100)\n"
"  --momentum X         SGD momentum (default 0)\n"
"  --batch N            mini-batch size (default 32)\n"
"  --depth N            linear layers, N-1 of them hidden (default 4)\n"
"  --width N            hidden units per layer (default 64)\n"
"  --act NAME           relu, tanh or sigmoid (default relu)\n"
"  --init-scale S       weight init: small (0.25), normal (1), large (4)\n"
"                       or any factor on the He/Xavier std\n"
"  --clip X             clip the global gradient norm to X, log it\n"
"  --nan-at STEP        put a NaN into the input batch of STEP\n"
"  --seed N             random seed (default 1)\n"
"  --run NAME           run key (default: generated by the library)\n"
"  --project NAME       project (default examples)\n"
"  --url URL            the daemon (default $GRADWATCH_URL or the above)\n"
"  --stop-on-critical   stop, and mark the run failed, when gradwatch says\n"
"                       the run is critical\n"
"  --step-ms MS         sleep MS milliseconds per step (a realistic pace)\n"
"  --close-ms MS        at exit, wait at most MS for the daemon (3000)\n"
"  --print-every N      progress line every N steps (default 50)\n"
"  --weight-every N     log weight norms every N steps (default 10)\n"
"  --eval-every N       held-out accuracy every N steps (default 50)\n"
"  --gradcheck          check backprop against finite differences, exit\n"
"  -q, --quiet          no progress or summary lines\n"
"  -h, --help           this help\n"
"\n"
"Going wrong on purpose:\n"
"  mlp --lr 2                                       explodes to NaN\n"
"  mlp --act sigmoid --depth 12 --init-scale small  vanishing gradients\n"
"  mlp --nan-at 200                                 one poisoned batch\n"
"  mlp --clip 1e-3                                  every step clipped\n"
"\n"
"Exit status: 0 trained, 1 bad usage or a failed gradcheck, 2 stopped\n"
"because the run turned critical.\n", MLP_INPUTS, MLP_CLASSES);
}

/* Parse a number into *out within [lo, hi]; -1 when it is not one. */
static int
parse_double(const char *s, double lo, double hi, double *out)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

static int
parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int
parse_act(const char *s, enum act *out)
{
	int	 a;

	for (a = ACT_RELU; a <= ACT_SIGMOID; a++)
		if (strcmp(s, act_names[a]) == 0) {
			*out = a;
			return 0;
		}
	return -1;
}

static int
parse_scale(const char *s, double *out)
{
	if (strcmp(s, "small") == 0)
		*out = 0.25;
	else if (strcmp(s, "normal") == 0)
		*out = 1;
	else if (strcmp(s, "large") == 0)
		*out = 4;
	else
		return parse_double(s, 1e-6, 1e6, out);
	return 0;
}

/* The long options without a short form. */
enum {
	O_STEPS = 256, O_LR, O_WARMUP, O_MOMENTUM, O_BATCH, O_DEPTH, O_WIDTH,
	O_ACT, O_INIT, O_CLIP, O_NAN, O_SEED, O_RUN, O_PROJECT, O_URL, O_STOP,
	O_STEPMS, O_CLOSEMS, O_PRINT, O_WEIGHT, O_EVAL, O_GRADCHECK
};

/* The int field an option sets, NULL for the others. */
static int *
opts_int_field(struct opts *o, int ch)
{
	switch (ch) {
	case O_BATCH:
		return &o->batch;
	case O_DEPTH:
		return &o->depth;
	case O_WIDTH:
		return &o->width;
	case O_STEPMS:
		return &o->step_ms;
	case O_CLOSEMS:
		return &o->close_ms;
	case O_PRINT:
		return &o->print_every;
	case O_WEIGHT:
		return &o->weight_every;
	case O_EVAL:
		return &o->eval_every;
	default:
		return NULL;
	}
}

/* Fill o from argv; -1 with a message on stderr for bad usage. */
static int
opts_parse(struct opts *o, int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "steps", required_argument, NULL, O_STEPS },
		{ "lr", required_argument, NULL, O_LR },
		{ "warmup", required_argument, NULL, O_WARMUP },
		{ "momentum", required_argument, NULL, O_MOMENTUM },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "depth", required_argument, NULL, O_DEPTH },
		{ "width", required_argument, NULL, O_WIDTH },
		{ "act", required_argument, NULL, O_ACT },
		{ "init-scale", required_argument, NULL, O_INIT },
		{ "clip", required_argument, NULL, O_CLIP },
		{ "nan-at", required_argument, NULL, O_NAN },
		{ "seed", required_argument, NULL, O_SEED },
		{ "run", required_argument, NULL, O_RUN },
		{ "project", required_argument, NULL, O_PROJECT },
		{ "url", required_argument, NULL, O_URL },
		{ "stop-on-critical", no_argument, NULL, O_STOP },
		{ "step-ms", required_argument, NULL, O_STEPMS },
		{ "close-ms", required_argument, NULL, O_CLOSEMS },
		{ "print-every", required_argument, NULL, O_PRINT },
		{ "weight-every", required_argument, NULL, O_WEIGHT },
		{ "eval-every", required_argument, NULL, O_EVAL },
		{ "gradcheck", no_argument, NULL, O_GRADCHECK },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int64_t		 v = 0;
	int		 ch, bad, i;

	*o = (struct opts){ .steps = 500, .nan_at = -1, .lr = 0.1,
	    .warmup = 100, .init_scale = 1, .batch = 32, .depth = 4,
	    .width = 64, .act = ACT_RELU, .seed = 1, .project = "examples",
	    .close_ms = 3000, .print_every = 50, .weight_every = 10,
	    .eval_every = 50 };
	while ((ch = getopt_long(argc, argv, "hq", longopts, NULL)) != -1) {
		bad = 0;
		switch (ch) {
		case 'h':
			usage(stdout);
			exit(0);
		case 'q':
			o->quiet = 1;
			break;
		case O_STEPS:
			bad = parse_int(optarg, 1, INT64_MAX / 2, &o->steps);
			break;
		case O_LR:
			bad = parse_double(optarg, 0, 1e6, &o->lr);
			break;
		case O_MOMENTUM:
			bad = parse_double(optarg, 0, 0.999999, &o->momentum);
			break;
		case O_CLIP:
			bad = parse_double(optarg, 1e-300, 1e300, &o->clip);
			break;
		case O_INIT:
			bad = parse_scale(optarg, &o->init_scale);
			break;
		case O_ACT:
			bad = parse_act(optarg, &o->act);
			break;
		case O_WARMUP:
			bad = parse_int(optarg, 0, INT64_MAX, &o->warmup);
			break;
		case O_NAN:
			bad = parse_int(optarg, 0, INT64_MAX, &o->nan_at);
			break;
		case O_SEED:
			bad = parse_int(optarg, 0, INT64_MAX, &v);
			o->seed = (uint64_t)v;
			break;
		case O_BATCH:
		case O_DEPTH:
		case O_WIDTH:
		case O_STEPMS:
		case O_CLOSEMS:
		case O_PRINT:
		case O_WEIGHT:
		case O_EVAL:
			bad = parse_int(optarg,
			    ch == O_STEPMS || ch == O_CLOSEMS ? 0 : 1,
			    ch == O_DEPTH ? 64 : 100000, &v);
			*opts_int_field(o, ch) = (int)v;
			break;
		case O_RUN:
			o->run = optarg;
			break;
		case O_PROJECT:
			o->project = optarg;
			break;
		case O_URL:
			o->url = optarg;
			break;
		case O_STOP:
			o->stop_on_critical = 1;
			break;
		case O_GRADCHECK:
			o->gradcheck = 1;
			break;
		default:
			usage(stderr);
			return -1;
		}
		if (bad) {
			for (i = 0; longopts[i].val != ch; i++)
				;
			fprintf(stderr, "mlp: bad value for --%s: %s\n",
			    longopts[i].name, optarg);
			return -1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	return 0;
}

/* The client and the ids it gave this program's tensors and metrics. */
struct watch {
	struct gw_client *gw;
	int		*wid;		/* per layer: the weight's id */
	int		*bid;		/* the bias's */
	int		 acc;
	int		 val_acc;
};

/* Register every weight and bias tensor (name, shape, depth) and the metrics. */
static void
watch_register(struct watch *w, const struct net *n)
{
	char	 name[64];
	int64_t	 shape[2];
	int	 l;

	for (l = 0; l < n->depth; l++) {
		shape[0] = n->dim[l + 1];
		shape[1] = n->dim[l];
		snprintf(name, sizeof name, "fc%d.weight", l);
		w->wid[l] = gw_layer_shape(w->gw, name, shape, 2, l);
		snprintf(name, sizeof name, "fc%d.bias", l);
		w->bid[l] = gw_layer_shape(w->gw, name, shape, 1, l);
	}
	w->acc = gw_metric(w->gw, "accuracy");
	w->val_acc = gw_metric(w->gw, "val_accuracy");
}

static double
now_seconds(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
sleep_ms(int ms)
{
	struct timespec	 ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static const char *
health_name(int h)
{
	switch (h) {
	case GW_HEALTH_OK:
		return "ok";
	case GW_HEALTH_WARNING:
		return "warning";
	case GW_HEALTH_CRITICAL:
		return "critical";
	default:
		return "-";
	}
}

/* Accuracy on the held-out set, evaluated in batches of n->maxbatch. */
static double
evaluate(struct net *n, const double *x, const int *y)
{
	int	 k, nb, correct, total = 0;

	for (k = 0; k < MLP_EVAL_N; k += nb) {
		nb = MLP_EVAL_N - k < n->maxbatch ? MLP_EVAL_N - k :
		    n->maxbatch;
		net_forward(n, x + (size_t)k * MLP_INPUTS, y + k, nb, &correct);
		total += correct;
	}
	return (double)total / MLP_EVAL_N;
}

/* Log one step: everything a step carries but the metrics. */
static void
watch_step(struct watch *w, const struct opts *o, const struct net *n,
    int64_t step, double loss, double gnorm, double lr)
{
	int	 l;

	gw_step_time(w->gw, step, now_seconds());
	gw_loss(w->gw, step, loss);
	gw_grad_norm(w->gw, step, gnorm);
	gw_lr(w->gw, step, lr);
	for (l = 0; l < n->depth; l++) {
		gw_layer_grad(w->gw, step, w->wid[l],
		    norm2(n->grad + n->woff[l], net_wlen(n, l)));
		gw_layer_grad(w->gw, step, w->bid[l],
		    norm2(n->grad + n->boff[l], n->dim[l + 1]));
	}
	if (step % o->weight_every != 0)
		return;
	for (l = 0; l < n->depth; l++) {
		gw_layer_weight(w->gw, step, w->wid[l],
		    norm2(n->param + n->woff[l], net_wlen(n, l)));
		gw_layer_weight(w->gw, step, w->bid[l],
		    norm2(n->param + n->boff[l], n->dim[l + 1]));
	}
}

/* Print why the run is critical, from the daemon's latest answer. */
static void
report_critical(struct gw_client *gw, int64_t step)
{
	struct gw_alert	 al[MLP_MAX_ALERTS];
	int		 i, nal;

	nal = gw_alerts(gw, al, MLP_MAX_ALERTS);
	fprintf(stderr, "mlp: stopping at step %lld: gradwatch says the run "
	    "is critical (%d alert%s firing)\n", (long long)step, nal,
	    nal == 1 ? "" : "s");
	for (i = 0; i < nal && i < MLP_MAX_ALERTS; i++)
		fprintf(stderr, "mlp:   %s %s%s%s since step %lld: %s\n",
		    al[i].severity, al[i].kind, al[i].series[0] ? " on " : "",
		    al[i].series, (long long)al[i].onset_step, al[i].message);
}

/* What a run did, for its closing lines. */
struct summary {
	int64_t		 steps;		/* steps trained */
	int64_t		 bad_loss;	/* first non-finite loss, or -1 */
	int64_t		 bad_grad;	/* first non-finite gradient norm */
	int64_t		 clipped;	/* steps whose gradient was clipped */
	int64_t		 max_step;	/* where the largest finite grad norm was */
	double		 max_grad;
	double		 loss;		/* the last step's */
	double		 val;		/* the last held-out accuracy */
};

/* NaN without a sign, so that printf never says "-nan". */
static double
unsigned_nan(double v)
{
	return isnan(v) ? NAN : v;
}

/*
 * The closing lines: one summary line, then each weight tensor's last
 * gradient and weight norm, input side first.
 */
static void
summary_print(const struct summary *sum, const struct opts *o,
    const struct net *n)
{
	char	 name[32];
	double	 g, first = 0, last = 0;
	int	 l;

	for (l = 0; l < n->depth; l++) {
		g = norm2(n->grad + n->woff[l], net_wlen(n, l));
		first = l == 0 ? g : first;
		last = g;
	}
	printf("done: %lld steps, loss %.4g", (long long)sum->steps,
	    unsigned_nan(sum->loss));
	if (sum->bad_loss >= 0)
		printf(" (non-finite from step %lld)", (long long)sum->bad_loss);
	printf(", held-out accuracy %.3f", sum->val);
	if (o->clip > 0)
		printf(", clipped %lld of %lld steps", (long long)sum->clipped,
		    (long long)sum->steps);
	printf(", grad norm fc0/fc%d %.3g\n", n->depth - 1,
	    unsigned_nan(first / last));
	if (sum->bad_grad >= 0)
		printf("gradient norm non-finite from step %lld, largest finite "
		    "%.3g at step %lld\n", (long long)sum->bad_grad,
		    sum->max_grad, (long long)sum->max_step);
	printf("%-12s %12s %12s\n", "tensor", "grad norm", "weight norm");
	for (l = 0; l < n->depth; l++) {
		snprintf(name, sizeof name, "fc%d.weight", l);
		printf("%-12s %12.3e %12.3e\n", name,
		    unsigned_nan(norm2(n->grad + n->woff[l], net_wlen(n, l))),
		    unsigned_nan(norm2(n->param + n->woff[l], net_wlen(n, l))));
	}
}

/*
 * Train for o->steps steps, logging each to w.  Returns 0, or 2 when
 * o->stop_on_critical stopped it.
 */
static int
train(const struct opts *o, struct net *n, struct watch *w,
    const struct task *task, struct rng *r)
{
	struct summary	 sum = { 0, -1, -1, 0, -1, 0, NAN, -1 };
	double		*x = NULL, *ex = NULL, gnorm, acc, lr;
	int		*y = NULL, *ey = NULL, correct, rc = 1;
	int64_t		 step;
	size_t		 j;

	x = calloc((size_t)o->batch * MLP_INPUTS, sizeof *x);
	y = calloc(o->batch, sizeof *y);
	ex = calloc((size_t)MLP_EVAL_N * MLP_INPUTS, sizeof *ex);
	ey = calloc(MLP_EVAL_N, sizeof *ey);
	if (x == NULL || y == NULL || ex == NULL || ey == NULL) {
		fprintf(stderr, "mlp: out of memory\n");
		goto out;
	}
	task_sample(task, r, ex, ey, MLP_EVAL_N);
	for (step = 0; step < o->steps; step++) {
		task_sample(task, r, x, y, o->batch);
		if (step == o->nan_at)
			x[0] = NAN;	/* one corrupt feature of one sample */
		sum.loss = net_forward(n, x, y, o->batch, &correct);
		net_backward(n, y, o->batch);
		gnorm = norm2(n->grad, n->nparams);
		acc = (double)correct / o->batch;
		lr = o->lr;
		if (step < o->warmup)
			lr *= (double)(step + 1) / o->warmup;
		watch_step(w, o, n, step, sum.loss, gnorm, lr);
		gw_metric_value(w->gw, step, w->acc, acc);
		if (!isfinite(sum.loss) && sum.bad_loss < 0)
			sum.bad_loss = step;
		if (!isfinite(gnorm) && sum.bad_grad < 0)
			sum.bad_grad = step;
		if (isfinite(gnorm) && gnorm > sum.max_grad) {
			sum.max_grad = gnorm;
			sum.max_step = step;
		}
		if (o->clip > 0) {
			gw_clip(w->gw, step, o->clip, gnorm);
			if (!(gnorm <= o->clip)) {	/* NaN poisons, as usual */
				for (j = 0; j < n->nparams; j++)
					n->grad[j] *= o->clip / gnorm;
				sum.clipped++;
			}
		}
		net_update(n, lr, o->momentum);
		sum.steps = step + 1;
		if (sum.steps % o->eval_every == 0 || sum.steps == o->steps) {
			sum.val = evaluate(n, ex, ey);
			gw_metric_value(w->gw, step, w->val_acc, sum.val);
		}
		if (!o->quiet && (step % o->print_every == 0 ||
		    sum.steps == o->steps))
			printf("step %5lld  loss %-10.4g grad_norm %-10.4g "
			    "acc %.2f  health %s\n", (long long)step,
			    unsigned_nan(sum.loss), unsigned_nan(gnorm), acc,
			    health_name(gw_health(w->gw)));
		if (o->stop_on_critical &&
		    gw_health(w->gw) == GW_HEALTH_CRITICAL) {
			report_critical(w->gw, step);
			rc = 2;
			break;
		}
		if (o->step_ms > 0)
			sleep_ms(o->step_ms);
	}
	if (rc != 2)
		rc = 0;
	if (!o->quiet)
		summary_print(&sum, o, n);

out:
	free(x);
	free(y);
	free(ex);
	free(ey);
	return rc;
}

/* The run's configuration as a JSON object, for the daemon. */
static void
config_json(const struct opts *o, char *buf, size_t size)
{
	char	 clip[32] = "null", nan_at[32] = "null";

	if (o->clip > 0)
		snprintf(clip, sizeof clip, "%g", o->clip);
	if (o->nan_at >= 0)
		snprintf(nan_at, sizeof nan_at, "%lld", (long long)o->nan_at);
	snprintf(buf, size, "{\"model\":\"mlp\",\"depth\":%d,\"width\":%d,"
	    "\"act\":\"%s\",\"init_scale\":%g,\"lr\":%g,\"momentum\":%g,"
	    "\"warmup\":%lld,\"batch\":%d,\"steps\":%lld,\"clip\":%s,"
	    "\"nan_at\":%s,\"seed\":%llu}", o->depth, o->width,
	    act_names[o->act], o->init_scale, o->lr, o->momentum,
	    (long long)o->warmup, o->batch, (long long)o->steps, clip, nan_at,
	    (unsigned long long)o->seed);
}

int
main(int argc, char *argv[])
{
	struct opts		 o;
	struct gw_options	 gwo = { 0 };
	struct watch		 w = { 0 };
	struct task		 task;
	struct rng		 r;
	struct net		*n = NULL;
	char			 config[512];
	int			 rc, status = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);	/* progress lines as they happen */
	if (opts_parse(&o, argc, argv) == -1)
		return 1;
	if (o.gradcheck)
		return gradcheck(o.seed) == 0 ? 0 : 1;
	rng_init(&r, o.seed, 1);
	task_init(&task, &r);
	n = net_new(o.depth, o.width, o.act, o.init_scale, o.batch, &r);
	w.wid = calloc(o.depth, sizeof *w.wid);
	w.bid = calloc(o.depth, sizeof *w.bid);
	if (n == NULL || w.wid == NULL || w.bid == NULL) {
		fprintf(stderr, "mlp: out of memory\n");
		goto out;
	}

	config_json(&o, config, sizeof config);
	gwo.url = o.url;
	gwo.run = o.run;
	gwo.project = o.project;
	gwo.config_json = config;
	if ((rc = gw_open(&w.gw, &gwo)) != GW_OK)	/* w.gw stays NULL */
		fprintf(stderr, "mlp: monitoring off: %s\n", gw_strerror(rc));
	watch_register(&w, n);
	if (!o.quiet)
		printf("run %s: %d layers x %d %s, %zu parameters, lr %g, "
		    "momentum %g, batch %d, %lld steps\n",
		    w.gw != NULL ? gw_run(w.gw) : "(not monitored)", o.depth,
		    o.width, act_names[o.act], n->nparams, o.lr, o.momentum,
		    o.batch, (long long)o.steps);

	status = train(&o, n, &w, &task, &r);
	if (w.gw != NULL && gw_dropped(w.gw) > 0)
		fprintf(stderr, "mlp: gradwatch dropped %llu values\n",
		    (unsigned long long)gw_dropped(w.gw));
	rc = gw_close_status(w.gw, status == 0 ? GW_RUN_FINISHED :
	    GW_RUN_FAILED, o.close_ms);
	if (w.gw != NULL && rc != GW_OK && !o.quiet)
		fprintf(stderr, "mlp: not everything reached gradwatchd: %s\n",
		    gw_strerror(rc));

out:
	net_free(n);
	free(w.wid);
	free(w.bid);
	return status;
}
