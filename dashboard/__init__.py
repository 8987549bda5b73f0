"""Streamlit-specific shared code for the bnviz dashboard (custom components, helpers)."""
