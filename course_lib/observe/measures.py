"""Metrics for interventions: the logit difference between a right and a wrong answer, and the
patching score that normalises it between a corrupted (0) and a clean (1) run.
These are the reference solutions of the notebook's exercises 4 and 6."""


def logit_difference(logits, correct, wrong):
    """Mean over the batch of logit(correct) − logit(wrong) at the last position.
    ``logits``: [batch, pos, vocab]; ``correct``, ``wrong``: token ids, shape [batch]."""
    import torch

    last = logits[:, -1]
    rows = torch.arange(last.shape[0], device=last.device)
    return (last[rows, correct] - last[rows, wrong]).mean()


def patching_score(patched, corrupted, clean):
    """Fraction of the clean behaviour a patch restores: 0 = corrupted, 1 = clean.
    Raises ``ValueError`` where clean == corrupted (the score would be 0/0)."""
    import torch

    if torch.as_tensor(clean == corrupted).any():
        raise ValueError("patching_score: the clean and corrupted values are equal, so there is nothing to "
                         "restore and the score is undefined (0/0). Use prompts or a metric on which the two runs differ.")
    return (patched - corrupted) / (clean - corrupted)
