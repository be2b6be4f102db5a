"""Offline analysis of tool-token heads on stories260K: how far other features, a non-linear head or more training text
carry a head to sentences written independently of the demo corpus generator. Reads the dumps of dump.cs, needs numpy.

    AGENTHOST_MODELS_DIR=../shared/models dotnet run docs/data/tool-tokens/analysis/dump.cs -- /tmp/toolkens 1 2 7 \
        docs/data/tool-tokens/blind.txt docs/data/tool-tokens/stories-{a,b,c,d}.txt
    python3 docs/data/tool-tokens/analysis/analyse.py /tmp/toolkens [--slow]

The head is trained as ToolTokenTrainer trains it (softmax over [vocabulary ; tools], Adam 3e-3, 40 epochs, batches of 64,
every position labelled) from zeros, and fires as ToolTokenEvaluation scores it: a tool's score above every vocabulary logit.
F1 counts the right tool at the right position. Features: h (the final hidden state), wK (the mean of the last K hidden
states of the line, w0: the whole line so far), bowK (the mean one-hot of the last K tokens: every word the window holds)."""
import os, sys
import numpy as np

DATA = sys.argv[1]
SLOW = '--slow' in sys.argv
D, V, T = int(os.environ.get('D', '64')), int(os.environ.get('V', '512')), 3
_cache = {}


def load(name):
    if name not in _cache:
        raw = np.fromfile(os.path.join(DATA, name + '.bin'), dtype=np.float32).reshape(-1, 3 + D + V)
        ints = raw[:, :3].view(np.int32)
        logits = raw[:, 3 + D:]
        top = logits.max(1)
        _cache[name] = dict(line=ints[:, 0].copy(), tok=ints[:, 1].copy(), lab=ints[:, 2].copy(), h=raw[:, 3:3 + D].copy(),
                            max=top, lse=top + np.log(np.exp(logits - top[:, None]).sum(1)))
    return _cache[name]


def window_mean(x, line, k):
    """Mean of the last k rows of the same line, the current one included (k = 0: the whole line so far)."""
    n = len(x)
    sums = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, 0, dtype=np.float64)])
    first = np.where(np.r_[True, line[1:] != line[:-1]])[0]
    starts = first[np.searchsorted(first, np.arange(n), side='right') - 1]
    i = np.arange(n)
    lo = starts if k == 0 else np.maximum(starts, i - k + 1)
    return (sums[i + 1] - sums[lo]) / (i + 1 - lo)[:, None]


def features(r, kind):
    parts = []
    for part in kind.split('+'):
        if part == 'h':
            parts.append(r['h'])
        elif part.startswith('w'):
            parts.append(window_mean(r['h'], r['line'], int(part[1:])))
        elif part.startswith('bow'):
            onehot = np.zeros((len(r['tok']), V), np.float32)
            onehot[np.arange(len(r['tok'])), r['tok']] = 1
            parts.append(window_mean(onehot, r['line'], int(part[3:])))
    labelled = r['lab'] >= 0
    return np.hstack(parts)[labelled].astype(np.float64), r['lse'][labelled], r['max'][labelled], r['lab'][labelled]


def train(x, lse, lab, hidden=0, epochs=40, lr=3e-3, batch=64, seed=1):
    rng = np.random.default_rng(seed)
    params = [rng.normal(0, x.shape[1] ** -0.5, (x.shape[1], hidden)), np.zeros(hidden), np.zeros((hidden, T))] if hidden else [np.zeros((x.shape[1], T))]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    tool = lab - V
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for s in range(0, len(x), batch):
            b = order[s:s + batch]
            if hidden:
                a = x[b] @ params[0] + params[1]
                z = np.maximum(a, 0)
                scores = z @ params[2]
            else:
                scores = x[b] @ params[0]
            both = np.hstack([lse[b][:, None], scores])
            p = np.exp(both - both.max(1, keepdims=True))
            g = (p / p.sum(1, keepdims=True))[:, 1:]
            calls = np.where(tool[b] >= 0)[0]
            g[calls, tool[b][calls]] -= 1
            g /= len(b)
            if hidden:
                ga = (g @ params[2].T) * (a > 0)
                grads = [x[b].T @ ga, ga.sum(0), z.T @ g]
            else:
                grads = [x[b].T @ g]
            step += 1
            for k, (param, grad) in enumerate(zip(params, grads)):
                m[k] = 0.9 * m[k] + 0.1 * grad
                v[k] = 0.999 * v[k] + 0.001 * grad * grad
                param -= lr * (m[k] / (1 - 0.9 ** step)) / (np.sqrt(v[k] / (1 - 0.999 ** step)) + 1e-8)
    return params


def f1(params, x, top, lab):
    scores = np.maximum(x @ params[0] + params[1], 0) @ params[2] if len(params) == 3 else x @ params[0]
    fired = scores.max(1) > top
    right = fired & (lab == V + scores.argmax(1))
    precision, recall = right.sum() / max(fired.sum(), 1), right.sum() / max((lab >= V).sum(), 1)
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def fit(names, kind, **options):
    parts = [features(load(n), kind) for n in names]
    return train(np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), np.concatenate([p[3] for p in parts]), **options)


def score(params, name, kind):
    x, _, top, lab = features(load(name), kind)
    return f1(params, x, top, lab)


def generator(kind, **options):
    """Trained on the demo corpus (1,200 lines of seed S and the model's 10 stories), as toolkens train by default."""
    rows = []
    for seed in (1, 2, 7):
        params = fit([f'train{seed}'], kind, **options)
        rows.append([score(params, n, kind) for n in (f'heldout{seed}', f'unseen{seed}', 'phrasings', 'blind')])
    report(f'{kind} {options or ""}: demo corpus', ['seen', 'unseen', 'phrasings', 'blind'], rows)


def writers(kind, **options):
    """Trained on the demo corpus of seed 1 and three of the four written story sets; scored on the fourth."""
    rows, sets = [], ['stories-a', 'stories-b', 'stories-c', 'stories-d']
    for held in sets:
        params = fit(['train1'] + [s for s in sets if s != held], kind, **options)
        rows.append([score(params, n, kind) for n in (held, 'phrasings', 'blind')])
    report(f'{kind} {options or ""}: demo corpus + 3 written sets', ['4th written set', 'phrasings', 'blind'], rows)


def report(title, columns, rows):
    rows = np.array(rows)
    print(f'{title}\n  ' + '; '.join(f'{c} {" ".join(f"{v:.3f}" for v in rows[:, i])} (mean {rows[:, i].mean():.3f})' for i, c in enumerate(columns)), flush=True)


if __name__ == '__main__':
    generator('h+w16')
    for kind in ('h', 'h+w32', 'h+w16+w0', 'h+w8+w32', 'h+w16+bow16'):
        generator(kind)
    generator('h+w16', hidden=128, epochs=20)
    writers('h+w16')
    writers('h+w4+w16+w0+bow4+bow16+bow0')
    if SLOW:
        writers('h+w16+bow16+bow0', hidden=128, epochs=30)
