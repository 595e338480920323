import pytest
import torch

from trainers.clustering import kmeans, nearest


def blobs(seed=0):
    centers = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    g = torch.Generator().manual_seed(seed)
    points = centers.repeat(200, 1) + 0.1 * torch.randn(600, 2, generator=g)  # (600, 2)
    return centers, points


def test_kmeans_finds_separated_blobs_and_is_deterministic():
    centers, points = blobs()
    found = kmeans(points, 3, torch.Generator().manual_seed(1))
    assert torch.cdist(found, centers).min(dim=1).values.max() < 0.05
    assert sorted(nearest(centers, found).tolist()) == [0, 1, 2]
    again = kmeans(points, 3, torch.Generator().manual_seed(1))
    assert torch.equal(found, again)


def test_nearest_assigns_each_point_to_its_closest_centroid():
    centroids = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    points = torch.tensor([[1.0, 0.0], [9.0, 1.0], [4.9, 0.0]])
    assert nearest(points, centroids).tolist() == [0, 1, 0]


@pytest.mark.parametrize("k", [0, 601])
def test_kmeans_needs_between_one_and_n_clusters(k):
    _, points = blobs()
    with pytest.raises(ValueError, match="1 <= k <= 600"):
        kmeans(points, k, torch.Generator())
