"""Zero-shot evaluation on held-out tasks: classification top-1 and image<->text recall@K."""

from __future__ import annotations

import torch

from archsearch.data.embedded import ClassificationTask, RetrievalTask
from archsearch.data.pixels import normalize
from archsearch.models.clip import CLIP
from archsearch.models.tokenizer import tokenize


@torch.no_grad()
def _encode_images(model: CLIP, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    device = next(model.parameters()).device
    return torch.cat([model.encode_image(normalize(chunk.to(device)), normalize=True).float()
                      for chunk in images.split(batch_size)])


@torch.no_grad()
def _encode_texts(model: CLIP, texts: list[str], batch_size: int) -> torch.Tensor:
    device = next(model.parameters()).device
    tokens = tokenize(texts, model.spec.text.context_length)
    return torch.cat([model.encode_text(chunk.to(device), normalize=True).float()
                      for chunk in tokens.split(batch_size)])


@torch.no_grad()
def zeroshot_classification(model: CLIP, task: ClassificationTask, batch_size: int = 256) -> float:
    """Top-1 (%) with class embeddings = the normalised mean of each class's prompt embeddings."""
    prompts = task.prompts()
    per_prompt = _encode_texts(model, [p for ps in prompts for p in ps], batch_size)
    classes = torch.nn.functional.normalize(per_prompt.view(len(prompts), -1, per_prompt.shape[-1]).mean(1), dim=-1)
    images = _encode_images(model, task.images, batch_size)
    predicted = (images @ classes.T).argmax(1).cpu()
    return 100.0 * (predicted == task.labels).float().mean().item()


def recall_at_k(similarity: torch.Tensor, ks: tuple[int, ...]) -> dict[int, float]:
    """Recall@K (%) of a [queries, candidates] similarity whose true match is the diagonal; the
    rank of the truth is the number of candidates scoring strictly higher (ties count as found)."""
    truth = torch.arange(similarity.shape[0], device=similarity.device)
    rank = (similarity > similarity[truth, truth].unsqueeze(1)).sum(1)
    return {k: 100.0 * (rank < k).float().mean().item() for k in ks}


@torch.no_grad()
def retrieval(model: CLIP, task: RetrievalTask, batch_size: int = 256, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """Recall@K (%) both ways; image i's true caption is caption i."""
    similarity = _encode_images(model, task.images, batch_size) @ _encode_texts(model, task.captions, batch_size).T
    return {f"{name}_r{k}": value
            for name, sims in (("i2t", similarity), ("t2i", similarity.T))
            for k, value in recall_at_k(sims, ks).items()}


def evaluate(model: CLIP, classification: ClassificationTask, retrieval_task: RetrievalTask,
             batch_size: int = 256) -> dict[str, float]:
    was_training = model.training
    model.eval()
    try:
        return {"zeroshot_top1": zeroshot_classification(model, classification, batch_size),
                **retrieval(model, retrieval_task, batch_size)}
    finally:
        model.train(was_training)
