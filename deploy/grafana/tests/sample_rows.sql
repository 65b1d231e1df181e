-- Sample rows for tests/test_grafana.py: every ClickHouse query of the boards must return rows.
-- Jinan High-tech Zone against the 14th FYP (表2) and Jining's 2021 annual tasks, mid-2021.
-- Worked numbers: imports/exports 701.3 → 2140 by 2025 gives A(2021) ≈ 876.5; March 2021 YTD
-- 180.2 against 876.5 × (147.2 / 701.3) ≈ 184.0 is at risk, June 391.6 against 876.5 × 6/12 is
-- behind. The first June evaluation (version 1) was superseded; the budget_revenue row is a
-- tombstone. FINAL must hide both.
INSERT INTO parkpulse.zones VALUES
    ('jinan-hitech', '济南高新技术产业开发区', 'Jinan High-tech Industrial Development Zone', 'Jinan', 'Shandong'),
    ('jining-hitech', '济宁高新技术产业开发区', 'Jining High-tech Industrial Development Zone', 'Jining', 'Shandong');

INSERT INTO parkpulse.indicators VALUES
    ('gdp', '地区生产总值', 'Gross domestic product', 'CNY_100M', 'flow', 1, 'economy'),
    ('import_export_total', '进出口总额', 'Import and export total', 'CNY_100M', 'flow', 1, 'trade'),
    ('forest_coverage', '森林覆盖率', 'Forest coverage', 'PCT', 'ratio', 1, 'environment'),
    ('pm25', 'PM2.5平均浓度', 'PM2.5 mean concentration', 'UG_PER_M3', 'ratio', 0, 'environment'),
    ('hitech_enterprises', '高新技术企业数', 'High-tech enterprises', 'COUNT', 'stock', 1, 'enterprises'),
    ('hitech_enterprise_applications', '高新技术企业申报数', 'High-tech enterprise applications filed', 'COUNT', 'flow', 1, 'enterprises');

INSERT INTO parkpulse.plan_targets VALUES
    ('14th-fyp', 'jinan-hitech', 'import_export_total', 'level', 2020, 701.3, 2025, 2140, 25.0, 0, 'CNY_100M', '004 表2 第18项', 0, '2021-01-05 09:00:00', 0, 0),
    ('14th-fyp', 'jinan-hitech', 'gdp', 'growth', 2020, 6.5, 2025, NULL, 10.0, 0, 'PCT', '004 表2 第1项', 0, '2021-01-05 09:00:00', 0, 0),
    ('14th-fyp', 'jinan-hitech', 'forest_coverage', 'share', 2020, 25.6, 2025, 26.1, NULL, 1, 'PCT', '004 表2 第30项', 0, '2021-01-05 09:00:00', 0, 0),
    ('14th-fyp', 'jinan-hitech', 'pm25', 'qualitative', 2020, 43, 2025, NULL, NULL, 1, 'UG_PER_M3', '004 表2 第29项', 0, '2021-01-05 09:00:00', 0, 0),
    ('2021-annual', 'jining-hitech', 'hitech_enterprise_applications', 'level', 2020, NULL, 2021, 90, NULL, 0, 'COUNT', '003', 0, '2021-01-05 09:00:00', 0, 0),
    ('2021-annual', 'jining-hitech', 'hitech_enterprises', 'level', 2020, NULL, 2021, 175, NULL, 0, 'COUNT', '003', 0, '2021-01-05 09:00:00', 0, 0);

INSERT INTO parkpulse.observations VALUES
    ('jinan-hitech', 'import_export_total', 'YTD', '2020-03', 'bureau', 147.2, 'CNY_100M', 48.1, 'A', 0, 'I', '2020-04-15T09:00:00+08:00', '2021-07-16 02:00:00', 0, 0),
    ('jinan-hitech', 'import_export_total', 'YTD', '2021-03', 'bureau', 180.2, 'CNY_100M', 35.1, 'A', 0, 'I', '2021-04-15T09:00:00+08:00', '2021-07-16 02:00:00', 0, 0),
    ('jinan-hitech', 'import_export_total', 'YTD', '2021-06', 'bureau', 391.6, 'CNY_100M', 22.4, 'A', 0, 'I', '2021-07-15T09:00:00+08:00', '2021-07-16 02:00:00', 0, 0),
    ('jinan-hitech', 'gdp', 'YTD', '2021-06', 'bureau', NULL, 'CNY_100M', 8.6, 'P', 0, 'I', '2021-07-15T09:00:00+08:00', '2021-07-16 02:00:00', 0, 0),
    ('jining-hitech', 'hitech_enterprises', 'LEVEL', '2021-06', 'bureau', 176, 'COUNT', NULL, 'A', 0, 'I', '2021-07-10T09:00:00+08:00', '2021-07-16 02:00:00', 0, 0);

INSERT INTO parkpulse.indicator_status VALUES
    ('jinan-hitech', 'import_export_total', '14th-fyp', '2021-03', 'level', 'at_risk', 180.2, 184.0, 876.5, 0.979, -2.1, 858.5, 28.4, 'prior_year', 0, NULL, NULL, '2021-04-16 02:00:00', 1, 0, NULL),
    ('jinan-hitech', 'import_export_total', '14th-fyp', '2021-06', 'level', 'on_track', 391.6, 380.0, 876.5, 1.031, 3.1, 783.2, 25.0, 'linear', 0, NULL, NULL, '2021-07-16 01:00:00', 1, 0, NULL),
    ('jinan-hitech', 'import_export_total', '14th-fyp', '2021-06', 'level', 'behind', 391.6, 438.3, 876.5, 0.893, -10.7, 783.2, 36.2, 'linear', 0, NULL, NULL, '2021-07-16 02:00:00', 2, 0, NULL),
    ('jinan-hitech', 'gdp', '14th-fyp', '2021-03', 'growth', 'on_track', 12.1, 10.0, NULL, 1.019, 2.1, NULL, NULL, NULL, 0, NULL, NULL, '2021-04-16 02:00:00', 1, 0, NULL),
    ('jinan-hitech', 'gdp', '14th-fyp', '2021-06', 'growth', 'at_risk', 8.6, 10.0, NULL, 0.987, -1.4, NULL, NULL, NULL, 0, NULL, NULL, '2021-07-16 02:00:00', 1, 0, NULL),
    ('jinan-hitech', 'forest_coverage', '14th-fyp', '2021-06', 'share', 'behind', 24.1, 25.65, 25.7, 0.94, -1.55, NULL, NULL, NULL, 1, NULL, NULL, '2021-07-16 02:00:00', 1, 0, NULL),
    ('jinan-hitech', 'pm25', '14th-fyp', '2021-06', 'qualitative', 'not_evaluated', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1, NULL, NULL, '2021-07-16 02:00:00', 1, 0, NULL),
    ('jinan-hitech', 'budget_revenue', '14th-fyp', '2021-06', 'level', 'behind', 60.0, 71.0, 141.9, 0.845, -15.5, NULL, NULL, 'linear', 0, NULL, NULL, '2021-07-16 02:00:00', 3, 1, NULL),
    ('jining-hitech', 'hitech_enterprise_applications', '2021-annual', '2021-06', 'level', 'on_track', 52, 45, 90, 1.156, 15.6, 104, NULL, 'linear', 0, NULL, NULL, '2021-07-16 02:00:00', 1, 0, NULL),
    ('jining-hitech', 'hitech_enterprises', '2021-annual', '2021-06', 'level', 'achieved', 176, 168.5, 175, 1.045, 4.5, NULL, NULL, NULL, 0, NULL, NULL, '2021-07-16 02:00:00', 1, 0, NULL);

INSERT INTO parkpulse.zone_scorecard VALUES
    ('jinan-hitech', '2021-06', 0, 0, 1, 2, 0, 1, 'forest_coverage', 0.94, 0.94, '2021-07-16 02:00:00', 2),
    ('jining-hitech', '2021-06', 1, 1, 0, 0, 0, 0, NULL, NULL, 1.1, '2021-07-16 02:00:00', 2);

INSERT INTO parkpulse.deadletter VALUES
    ('2021-07-15 01:02:03', 'parkpulse.observations', 'unit_mismatch', 'USD_100M does not convert to CNY_100M', 'dataflow,PARKPULSE:ZONE_MONTHLY(1.0),I,jinan-hitech,import_export_total,2021-06,YTD,60.5,USD_100M,,A,0,', 'jinan-2021-06.csv', 7),
    ('2021-07-15 01:02:03', 'parkpulse.observations', 'unknown_zone', 'no zone jinan-hi-tech', 'dataflow,PARKPULSE:ZONE_MONTHLY(1.0),I,jinan-hi-tech,gdp,2021-06,YTD,,CNY_100M,8.6,P,0,', 'jinan-2021-06.csv', 9);
