-- Outbound calling from corporate SIMs: each company's destination policy, and the
-- operator's default trunk (emergency calls always leave through it).

ALTER TABLE company
    ADD COLUMN allow_international boolean NOT NULL DEFAULT false,
    ADD COLUMN allow_premium_rate  boolean NOT NULL DEFAULT false,  -- Russian 8-809
    ADD COLUMN allow_kazakhstan    boolean NOT NULL DEFAULT false;  -- +7 6xx/7xx

ALTER TABLE trunk ADD COLUMN is_default boolean NOT NULL DEFAULT false;
-- At most one default trunk.
CREATE UNIQUE INDEX trunk_one_default ON trunk (is_default) WHERE is_default;
