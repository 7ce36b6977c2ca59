"""attention-autograder: grades students' attention implementations with pytest."""
__version__ = "0.1.0"
