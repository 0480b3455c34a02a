//! Words the generated data is made of: Brazilian cities with their state and coordinates,
//! names, dishes.

/// (city, state, latitude, longitude, zip code prefix)
pub const CITIES: &[(&str, &str, f64, f64, u32)] = &[
    ("SAO PAULO", "SP", -23.55, -46.63, 1),
    ("RIO DE JANEIRO", "RJ", -22.91, -43.17, 20),
    ("BELO HORIZONTE", "MG", -19.92, -43.94, 30),
    ("CURITIBA", "PR", -25.43, -49.27, 80),
    ("PORTO ALEGRE", "RS", -30.03, -51.23, 90),
    ("SALVADOR", "BA", -12.97, -38.50, 40),
    ("RECIFE", "PE", -8.05, -34.88, 50),
    ("FORTALEZA", "CE", -3.73, -38.52, 60),
    ("BRASILIA", "DF", -15.79, -47.88, 70),
    ("GOIANIA", "GO", -16.68, -49.25, 74),
    ("CAMPINAS", "SP", -22.91, -47.06, 13),
    ("SANTOS", "SP", -23.96, -46.33, 11),
    ("RIBEIRAO PRETO", "SP", -21.18, -47.81, 14),
    ("FRANCA", "SP", -20.54, -47.40, 14),
    ("SOROCABA", "SP", -23.50, -47.46, 18),
    ("FLORIANOPOLIS", "SC", -27.60, -48.55, 88),
    ("NATAL", "RN", -5.79, -35.21, 59),
    ("MANAUS", "AM", -3.12, -60.02, 69),
    ("BELEM", "PA", -1.46, -48.50, 66),
    ("VITORIA", "ES", -20.32, -40.34, 29),
    ("NITEROI", "RJ", -22.88, -43.10, 24),
    ("LONDRINA", "PR", -23.31, -51.16, 86),
    ("UBERLANDIA", "MG", -18.92, -48.28, 38),
    ("JOAO PESSOA", "PB", -7.12, -34.86, 58),
];

/// How much of the volume each city gets (São Paulo dominates, as in the real data).
pub const CITY_WEIGHTS: &[f64] = &[
    40.0, 12.0, 6.0, 5.0, 4.0, 3.0, 3.0, 3.0, 3.0, 2.0, 3.0, 2.0, 2.0, 1.0, 1.0, 2.0, 1.0, 1.0,
    1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
];

pub const DISTRICTS: &[&str] = &[
    "CENTRO",
    "JARDIM PAULISTA",
    "MOEMA",
    "PINHEIROS",
    "VILA MARIANA",
    "COPACABANA",
    "BOTAFOGO",
    "SAVASSI",
    "BATEL",
    "MOINHOS DE VENTO",
    "BARRA",
    "BOA VIAGEM",
    "ALDEOTA",
    "ASA SUL",
    "JARDIM ESPRAIADO",
    "CAMPO GRANDE",
    "SANTA CECILIA",
    "TATUAPE",
    "LAPA",
    "BELA VISTA",
];

pub const NAMES: &[&str] = &[
    "GUSTAVO", "MICHELLE", "ANA", "JOAO", "MARIA", "PEDRO", "LUCAS", "JULIANA", "FERNANDA",
    "RAFAEL", "BRUNO", "CAMILA", "LETICIA", "MATHEUS", "AMANDA", "RODRIGO", "PATRICIA", "THIAGO",
    "BEATRIZ", "FELIPE", "LARISSA", "DIEGO", "VANESSA", "MARCOS", "CARLA", "NUNO", "ALINE",
    "RENATO", "SABRINA", "VINICIUS", "TATIANE", "EDUARDO", "PAULA", "LEONARDO",
];

/// (dish, price in cents)
pub const DISHES: &[(&str, u32)] = &[
    ("Parmegiana de Filé de Frango (2 pessoas)", 2800),
    ("Filé Mignon à Cubana", 4590),
    ("AÇAÍ 500ml", 1800),
    ("Pizza Grande Calabresa", 4990),
    ("Pizza Média Marguerita", 3890),
    ("X-Burguer", 2190),
    ("X-Salada", 2390),
    ("Combo Sushi 20 peças", 5990),
    ("Temaki Salmão", 2490),
    ("Marmitex Executivo", 1990),
    ("Feijoada Completa", 3490),
    ("Yakisoba Tradicional", 3290),
    ("Esfiha de Carne", 490),
    ("Coxinha", 650),
    ("Pastel de Queijo", 790),
    ("Refrigerante Lata", 550),
    ("Suco Natural 500ml", 890),
    ("Salada Caesar", 2690),
    ("Poke Salmão", 3990),
    ("Lasanha à Bolonhesa", 3190),
];

pub const GARNISHES: &[&str] = &[
    "COM Arroz branco",
    "Feijão",
    "Batata frita",
    "Farofa",
    "Salada",
    "Molho especial",
    "Granola",
    "Leite condensado",
    "Banana",
    "Morango",
    "Borda recheada",
    "Sem cebola",
];

pub const GARNISH_CATEGORIES: &[&str] =
    &["PERSONALIZAR", "ACOMPANHAMENTOS", "ADICIONAIS", "MOLHOS"];

/// (platform, share): the sample's shares.
pub const PLATFORMS: &[(&str, f64)] = &[
    ("IOS", 43.0),
    ("ANDROID", 40.0),
    ("DESKTOP", 16.0),
    ("WINDOWS_PHONE", 1.0),
];

pub const LANGUAGES: &[(&str, f64)] = &[
    ("pt-br", 97.0),
    ("en-us", 1.5),
    ("es-ar", 1.0),
    ("es-co", 0.5),
];

pub const TIMEZONES: &[&str] = &[
    "America/Sao_Paulo",
    "America/Fortaleza",
    "America/Manaus",
    "America/Recife",
    "America/Bahia",
    "America/Belem",
];

/// Share of orders per hour of the day (UTC-3 local time: lunch and dinner peaks).
pub const HOUR_WEIGHTS: [f64; 24] = [
    2.0, 1.0, 0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1.0, 1.5, 2.5, 6.0, 9.0, 7.0, 3.5, 2.5, 2.5, 3.5, 6.0,
    10.0, 11.0, 9.0, 6.0, 3.5,
];
