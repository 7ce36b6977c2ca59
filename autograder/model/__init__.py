"""The production-model layer: loading (`loading`), surgery on one block (`surgery`), the side-by-side run and
its metrics (`compare`, `metrics`), pictures (`heatmaps`) and the differentiable bridge into student code
(`bridge`)."""
