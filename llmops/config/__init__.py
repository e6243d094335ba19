"""Recipe schema, loading and dotted overrides."""

from llmops.config.loader import LoadedRecipe, apply_overrides, load_recipe, load_yaml_model, recipe_hash
from llmops.config.schema import Recipe

__all__ = ["LoadedRecipe", "Recipe", "apply_overrides", "load_recipe", "load_yaml_model", "recipe_hash"]
