-- The seed user admin@example.com / verysecret (bcrypt, cost 10).
-- Idempotent: an existing admin, whatever its case, is left as it is.
INSERT INTO users (email, first_name, last_name, password, user_active)
VALUES ('admin@example.com', 'Admin', 'User',
        '$2b$10$YkOds2XVy4MdtFWpuFh9QOmUmFX.GqfDu7xYawDwCdVDvKTbG1rWi', TRUE)
ON CONFLICT ((lower(email))) DO NOTHING;
