-- Number of companies: an empty database gets the demo data.
SELECT count(*) AS n FROM company
