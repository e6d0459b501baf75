"""Notebook 01 — toy models of superposition (Elhage et al., 2022): the model, its data and loss
(:mod:`.model`), training (:mod:`.training`), measurements (:mod:`.measures`), the 2 -> 1 phase
diagram (:mod:`.phases`), figures (:mod:`.plots`), the geometry explorer (:mod:`.widget`) and the
exercise checks (:mod:`.checks`)."""
from .checks import (
    check_classify_phase,
    check_feature_dimensionality,
    check_features_per_neuron,
    check_generate_batch,
    check_importance_weighted_loss,
    check_interference,
    check_toy_forward,
)
from .measures import (
    STICKY_FRACTIONS,
    dimensions_per_feature,
    feature_dimensionality,
    feature_norms,
    features_per_neuron,
    interference,
    nearest_sticky_fraction,
    neighbour_angles,
    sticky_plateaus,
)
from .model import ToyModel, generate_batch, importance_weighted_loss, sparsity_sweep, toy_forward
from .phases import PHASES, classify_phase, ideal_solution_losses, phase_grid, theoretical_phase
from .plots import plot_dimensionality, plot_feature_norms, plot_geometry, plot_neurons, plot_phase_diagram
from .training import ToyFunctions, TrainConfig, evaluate, train, train_best_of
from .widget import geometry_explorer

__all__ = ["PHASES", "STICKY_FRACTIONS", "ToyFunctions", "ToyModel", "TrainConfig", "check_classify_phase",
           "check_feature_dimensionality", "check_features_per_neuron", "check_generate_batch",
           "check_importance_weighted_loss", "check_interference", "check_toy_forward", "classify_phase",
           "dimensions_per_feature", "evaluate", "feature_dimensionality", "feature_norms", "features_per_neuron",
           "generate_batch", "geometry_explorer", "ideal_solution_losses", "importance_weighted_loss",
           "interference", "nearest_sticky_fraction", "neighbour_angles", "phase_grid", "plot_dimensionality",
           "plot_feature_norms", "plot_geometry", "plot_neurons", "plot_phase_diagram", "sparsity_sweep",
           "sticky_plateaus", "theoretical_phase", "toy_forward", "train", "train_best_of"]
