//! The CRM core around a client: the client itself (`clients`), its profile sections
//! (`passports`, `language_exams`, `proficiencies`, `qualifications`, `employments`, the shared
//! machinery in `profile`) and picture (`profile_pictures`), notes, and the work around it
//! (`tasks`, `reminders`, `calendar`, `notifications`).

pub mod calendar;
pub mod clients;
pub mod employments;
pub mod language_exams;
pub mod notes;
pub mod notifications;
pub mod passports;
pub mod proficiencies;
pub(crate) mod profile;
pub mod profile_pictures;
pub mod qualifications;
pub mod reminders;
pub mod tasks;
