"""Literature mapping: papers in, a dated concept graph out, with trends, communities and a report.

`job` runs the batch (the graph builder over papers, locally or on Ray), `concepts` adds the
paper-level edges, `occurrences` reads them back, `periods`, `trends` and `analytics` compute
the views, `report` writes them out.
"""
