"""bnviz — the entry point: page setup and the page list (the lab, then the lessons).

Every page of the app runs through here (`st.navigation`), so what all pages share — the
config kept alive across page switches, the URL — is set up once, in `dashboard.nav`.
"""

import streamlit as st

from dashboard import nav

st.set_page_config(page_title="bnviz", page_icon="📊", layout="wide")
nav.navigation().run()
