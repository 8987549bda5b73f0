"""bnviz — the entry point: page setup and the page list (the lab, then the lessons).

Every page of the app runs through here (`st.navigation`), so what all pages share — the
config kept alive across page switches, the URL — is set up once, in `dashboard.nav`.
"""

import streamlit as st

from dashboard import nav

st.set_page_config(page_title="bnviz", page_icon="📊", layout="wide")
# Streamlit leaves ~6rem above the first element: on a 768-pixel projector that is a chart's
# title. No theme setting controls it, hence this one rule.
st.html("<style>[data-testid='stMainBlockContainer']{padding-top:2.5rem}</style>")
nav.navigation().run()
